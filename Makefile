# Two entry points: `make run` (train the default model, serve it) and `make test` (the whole suite).
# Both build everything they need from scratch on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
MODEL ?= model/model.npz
# The shared MNIST copy beside the project, when there is one; otherwise load_mnist downloads.
MNISTLITE_DATA_DIR ?= $(abspath $(wildcard ../shared/datasets/mnist))
export MNISTLITE_DATA_DIR

.PHONY: run test unit lint train serve install clean bench tools browser prometheus registry-tools image image-check image-test \
	image-stop image-contents

$(VENV)/.installed-%: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$*]'
	touch $@

install: $(VENV)/.installed-test

# Order-only: a dependency bump must not retrain the default model.
$(MODEL): | $(VENV)/.installed-serve
	$(PY) scripts/train.py --out $(MODEL) --metrics $(basename $(MODEL)).metrics.json

train: $(MODEL)

serve: $(VENV)/.installed-serve $(MODEL)
	MNISTLITE_MODEL=$(MODEL) PORT=$(PORT) $(VENV)/bin/gunicorn -c service/gunicorn.conf.py service.wsgi:app

run: serve

# Heavy delivery linters (checkov, Helm SDK, hadolint, kubernetes-validate, actionlint) install once
# into a cache outside the clone and are reused: see tools/install.sh.
MNISTLITE_TOOLS_DIR ?= $(HOME)/.cache/mnistlite-tools
export MNISTLITE_TOOLS_DIR

tools:
	bash tools/install.sh

# Debian's headless Chromium + chromedriver for the page's browser test (apt, as root; never a download).
browser:
	bash tools/install-browser.sh

# Debian's prometheus + promtool for the alert-rule tests and the rehearsal's monitor stage (apt, as root).
prometheus:
	bash tools/install-prometheus.sh

# Debian's docker-registry, skopeo and gnupg for the rehearsal's image stages (apt, as root); `make pipeline`
# runs it itself once a container engine answers.
registry-tools:
	bash tools/install-registry.sh

# ruff's rules and settings are in pyproject.toml.
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

test: $(VENV)/.installed-test tools browser prometheus lint
	$(PY) -m pytest -q

# The quick inner loop: library and service tests that need no S3 server, real gunicorn, browser,
# container or delivery tool (markers set in tests/conftest.py), and no full-length training.
unit: $(VENV)/.installed-test
	$(PY) -m pytest -q -n 2 -m "not slow and not s3 and not server and not browser and not delivery"

# The service image, built and run for real (tools/image.sh): the engine is started if none answers
# (Debian's docker.io, its data under ~/.cache/mnistlite-docker, so layers stay cached), the base is
# built from the Debian archive when no registry is reachable. image-check: the checks cicd.yml runs.
IMAGE ?= mnistlite:dev

image: $(MODEL)
	IMAGE=$(IMAGE) bash tools/image.sh build

image-check:
	IMAGE=$(IMAGE) bash tools/image.sh check

image-test: image
	IMAGE=$(IMAGE) bash tools/image.sh check

image-stop:
	bash tools/image.sh stop

# The image's Debian packages and Python distributions with their sizes (docs/deploy.md shows them).
image-contents:
	IMAGE=$(IMAGE) bash tools/image.sh contents

bench: $(VENV)/.installed-test
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis

# ---- the pipeline ------------------------------------------------------------------------------
# `make candidate` is THE training command of the PR gate (retrain.yml), the merge (cicd.yml) and
# `make pipeline`: MNIST plus every week of DATA_URI that passes the data gate (failing weeks are
# skipped and reported). CI runs it with its own Python: `make candidate PY=python DATA_URI=s3://...`.
DATA_URI ?=
CANDIDATE ?= artifacts/candidate.npz
WEEKS_DIR ?= data/weeks
TRAIN_FLAGS ?=
PIPELINE_DIR ?= .pipeline

.PHONY: candidate pipeline

# Reproducible by contract: on one machine, the same tree and data give the same file, byte for byte.
# What would change the bits is pinned: the BLAS thread count (TRAIN_THREADS; the default follows idle
# cores), the file's "created" (SOURCE_DATE_EPOCH: the commit's time, not the clock) and Python's hash
# seed. The model file records the rest of what decides its bits (BLAS library, kernel family, numpy);
# per-run facts (wall-clock time, seconds, peak memory) go to the metrics file only.
TRAIN_THREADS ?= 2
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)

candidate:
	@test -n "$(DATA_URI)" || { echo "make candidate: set DATA_URI=s3://BUCKET/PREFIX (the weekly data)" >&2; exit 2; }
	SOURCE_DATE_EPOCH="$(SOURCE_DATE_EPOCH)" PYTHONHASHSEED=0 \
	$(PY) scripts/train.py --data mnist --data "$(DATA_URI)" --weeks all --work-dir "$(WEEKS_DIR)" \
	  --out "$(CANDIDATE)" --metrics "$(basename $(CANDIDATE)).metrics.json" --threads $(TRAIN_THREADS) $(TRAIN_FLAGS)

# The whole pipeline on one machine against a real S3 server (SeaweedFS on 127.0.0.1): see README.
pipeline: $(VENV)/.installed-test prometheus
	$(PY) scripts/pipeline.py --dir "$(PIPELINE_DIR)"
