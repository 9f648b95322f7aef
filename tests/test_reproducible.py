"""Training reproducible by contract: `make candidate` twice on the same tree and data gives one file.

The model file keeps only what determines the model (and what serving needs); per-run facts (the wall
clock, fit seconds, peak memory, threads) live in the metrics file. The file records what reproducing it
takes: the BLAS thread count and library, numpy, Python, the config and the training data's hash.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mnistlite as ml
from mnistlite.data.idx import write_idx
from mnistlite.data.mnist import FILES

ROOT = Path(__file__).resolve().parent.parent
TRAIN = [sys.executable, str(ROOT / "scripts" / "train.py")]
SMALL = ["--hidden", "16", "--epochs", "2", "--batch-size", "64", "--val-split", "0.1", "--seed", "5"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_idx(tmp_path_factory) -> Path:
    """A small MNIST-format folder (800 train, 200 test images of noisy class-dependent blobs)."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("tiny-idx")

    def images(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, d in enumerate(labels):
            x[i, 4 + 2 * d:8 + 2 * d, 6:22] = 255
        return x, labels

    (xtr, ytr), (xte, yte) = images(800), images(200)
    write_idx(folder / FILES["train_images"], xtr)
    write_idx(folder / FILES["train_labels"], ytr)
    write_idx(folder / FILES["test_images"], xte)
    write_idx(folder / FILES["test_labels"], yte)
    return folder


def train(out: Path, data: Path, *flags, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([*TRAIN, "--data", str(data), *SMALL, "--quiet", "--out", str(out), *flags],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def test_the_model_file_records_how_to_reproduce_it_and_no_per_run_fact(tiny_idx, tmp_path):
    r = train(tmp_path / "a.npz", tiny_idx, "--threads", "1", "--outliers", "0",
              env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert r.returncode == 0, r.stderr
    meta = ml.load(tmp_path / "a.npz").metadata
    assert meta["created"] == "2023-11-14T22:13:20+00:00"   # SOURCE_DATE_EPOCH, not the clock
    assert meta["reproduce"]["blas"]["threads"] == 1
    assert {lib["internal_api"] for lib in meta["reproduce"]["blas"]["libraries"]} == {"openblas"}
    assert meta["reproduce"]["numpy"] == np.__version__
    assert len(meta["training_data_sha256"]) == 64 and meta["config"]["seed"] == 5
    for fact in ("train_seconds", "peak_rss_mb", "blas_threads", "trained_at"):
        assert fact not in meta["metrics"], fact
    assert "test_accuracy" in meta["metrics"]     # what the registry and /v1/model show stays
    metrics = json.loads((tmp_path / "a.metrics.json").read_text())
    assert metrics["blas_threads"] == 1 and metrics["train_seconds"] > 0 and metrics["peak_rss_mb"] > 0
    assert metrics["created"] == meta["created"] and metrics["trained_at"] != meta["created"]
    assert metrics["model_sha256"] == sha256(tmp_path / "a.npz")


def test_same_data_flags_threads_and_source_date_give_the_same_bytes(tiny_idx, tmp_path):
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    for name in ("a", "b"):
        r = train(tmp_path / f"{name}.npz", tiny_idx, "--threads", "2", env=env)
        assert r.returncode == 0, r.stderr
    assert sha256(tmp_path / "a.npz") == sha256(tmp_path / "b.npz")
    # The metrics files differ (their per-run facts), the models they describe do not.
    a, b = (json.loads((tmp_path / f"{n}.metrics.json").read_text()) for n in "ab")
    assert a["model_sha256"] == b["model_sha256"] and a["trained_at"] <= b["trained_at"]


def test_a_bad_source_date_is_a_usage_error(tiny_idx, tmp_path):
    r = train(tmp_path / "a.npz", tiny_idx, env={"SOURCE_DATE_EPOCH": "yesterday"})
    assert r.returncode == 2 and "SOURCE_DATE_EPOCH must be whole seconds" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "a.npz").exists()


@pytest.mark.slow
def test_two_make_candidate_builds_match_bit_for_bit(mnist_dir, s3_bucket, tmp_path):
    """The contract itself: `make candidate` twice (MNIST plus a week on a real S3 server, a small
    recipe) -> the same sha256; the commit's time is the file's "created", the threads are pinned."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    endpoint, bucket = s3_bucket
    uri = f"s3://{bucket}/weeks"
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    pub = subprocess.run([sys.executable, str(ROOT / "scripts" / "publish_week.py"), "--data", str(mnist_dir),
                          "--start", "0", "--count", "300", f"{uri}/week-1", "--endpoint-url", endpoint],
                         capture_output=True, text=True, timeout=300, env=env)
    assert pub.returncode == 0, pub.stderr
    shas = []
    for run in ("one", "two"):
        candidate = tmp_path / run / "candidate.npz"
        r = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), "candidate",
                            f"PY={sys.executable}", f"DATA_URI={uri}", f"CANDIDATE={candidate}",
                            f"WEEKS_DIR={tmp_path / run / 'weeks'}",
                            "TRAIN_FLAGS=--hidden 16 --epochs 1 --val-split 0 --quiet"],
                           capture_output=True, text=True, timeout=600, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        shas.append(sha256(candidate))
        metrics = json.loads(candidate.with_suffix(".metrics.json").read_text())
        assert metrics["model_sha256"] == shas[-1] and metrics["n_train"] == 60300
    assert shas[0] == shas[1]
    meta = ml.load(candidate).metadata
    commit_time = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"],
                                 capture_output=True, text=True).stdout.strip()
    if commit_time:
        from datetime import datetime, timezone
        assert meta["created"] == datetime.fromtimestamp(int(commit_time), timezone.utc).isoformat(
            timespec="seconds")
    assert meta["reproduce"]["blas"]["threads"] == 2   # the Makefile's TRAIN_THREADS
