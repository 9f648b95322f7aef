# mnistlite service image: numpy MLP behind Falcon + gunicorn, on Debian trixie's own python3, in a
# distroless-style final stage: the interpreter, the standard library the service imports, the venv and
# the shared libraries they need. No shell, no package manager, no perl (docs/deploy.md lists the contents).
#
# Build context = repository root, after a model exists at model/model.npz:
#   make image                      # trains model/model.npz if missing, builds mnistlite:dev
#   docker build -t mnistlite:dev . # where the registry is reachable (GitHub's runners)
# The image runs as UID 10001 with a read-only root filesystem; it writes only to /tmp. Nothing in it runs
# a shell: the HEALTHCHECK is `python -m service.healthcheck` and the chart's probes are httpGet.
#
# The base: the official debian:trixie-slim, pinned by the digest of its multi-arch index. Where no
# registry is reachable, tools/image.sh builds the same suite from the Debian archive with mmdebstrap,
# imports it as debian:trixie-slim and passes --build-arg BASE_TAG=trixie-slim.
ARG BASE_TAG=trixie-slim@sha256:d7e12182ce18b85b93007c1dedf31f2d29e01ccf3182cc4017c709b6259bc132

########## python: the base + Debian's python3 (the interpreter both later stages share) ##########
FROM debian:${BASE_TAG} AS python
ARG DEBIAN_FRONTEND=noninteractive
# Debian byte-compiles the whole standard library at install time (12 MB of .pyc, generated, not
# part of any package): dropped here; the rootfs stage compiles only what the service imports.
# Versions come from the pinned base's suite and its security updates; pinning them again here
# would break the build at every Debian point release.
# The C-API test modules of Debian's standard library (lib-dynload/_test*, xx*: 1 MB no program
# imports) are left out with dpkg's own path-exclude filter, the mechanism the slim base uses for
# /usr/share/doc: the filter file stays in the image and every package stays registered at its
# version, so scanners see what they would see without it. Pure-Python parts (test/, pydoc_data/)
# cannot go this way: python3.13's postinst byte-compiles every .py that dpkg lists, filtered or not.
# hadolint ignore=DL3008
RUN printf 'path-exclude=/usr/lib/python3.*/lib-dynload/%s\n' '_test*' '_ctypes_test*' '_xxtestfuzz*' \
      'xxlimited*' 'xxsubtype*' > /etc/dpkg/dpkg.cfg.d/mnistlite-python-exclude \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old \
 && find /usr/lib/python3* -name __pycache__ -type d -prune -exec rm -rf {} +

########## builder: a venv with exactly requirements/runtime.txt + the mnistlite wheel ##########
FROM python AS builder
ARG DEBIAN_FRONTEND=noninteractive

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv binutils \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first: this layer is cached until requirements/runtime.txt changes. The optional `ca`
# secret is a CA bundle for pip (a registry reached through a TLS proxy); it never lands in a layer.
COPY requirements/runtime.txt requirements/runtime.txt
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile --only-binary=:all: -r requirements/runtime.txt

# The project itself, built as a wheel (the same artefact tests/delivery/test_delivery_contract.py installs).
# Then: no installers in the venv, and nothing the service never loads: test suites, type stubs,
# numpy's f2py/C headers/static libraries/SIMD test modules and the subpackages serving never imports
# (random, fft, polynomial, ma, testing: training needs numpy.random, the image only serves; numpy
# imports them on first use, and tools/image/routes_check.py runs every route against the image),
# Pillow's optional AVIF codec, fonts, colour management and Tk glue (tools/image/rootfs.py imports
# every Pillow plugin the service decodes with), gevent's test harness, its libuv loop and c-ares resolver (the worker uses the
# default libev loop and thread resolver), Falcon's benchmarks, C/C++/Cython sources and headers.
# Every *.dist-info stays whole (METADATA is what SBOM tools read). Extension modules and their
# bundled libraries lose their symbol tables and debug sections (strip --strip-unneeded keeps the
# dynamic symbols they link by).
COPY pyproject.toml setup.cfg README.md ./
COPY mnistlite/ mnistlite/
COPY service/ service/
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && /opt/venv/bin/pip wheel --no-deps --wheel-dir /tmp/wheels . \
 && /opt/venv/bin/pip install --no-compile --no-deps /tmp/wheels/mnistlite-*.whl \
 && /opt/venv/bin/pip uninstall --yes pip setuptools wheel \
 && find /opt/venv -depth \( -name tests -o -name __pycache__ \) -type d -exec rm -rf {} + \
 && find /opt/venv -name '*.pyi' -type f -delete \
 && sp="$(echo /opt/venv/lib/python3.*/site-packages)" \
 && rm -rf "$sp"/numpy/f2py "$sp"/numpy/_core/include "$sp"/numpy/_pyinstaller \
           "$sp"/numpy/_core/_simd.*.so "$sp"/numpy/_core/_multiarray_tests.*.so /opt/venv/bin/f2py \
           "$sp"/PIL/_avif.*.so "$sp"/pillow.libs/libavif-* \
           "$sp"/PIL/_imagingft.*.so "$sp"/pillow.libs/libfreetype-* "$sp"/pillow.libs/libharfbuzz-* \
           "$sp"/pillow.libs/libbrotli* "$sp"/PIL/_imagingcms.*.so "$sp"/pillow.libs/liblcms2-* \
           "$sp"/PIL/_imagingtk.*.so \
           "$sp"/numpy/random "$sp"/numpy/fft "$sp"/numpy/polynomial "$sp"/numpy/ma "$sp"/numpy/testing \
           "$sp"/numpy/_core/lib \
           "$sp"/gevent/testing "$sp"/gevent/libuv "$sp"/gevent/resolver/cares.*.so "$sp"/falcon/bench \
           "$sp"/greenlet/platform \
 && find "$sp" -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.pyx' \
                          -o -name '*.pxd' \) -delete \
 && find /opt/venv -type f -name '*.so*' -exec strip --strip-unneeded {} +

########## rootfs: the final stage's files, gathered from the builder by tools/image/rootfs.py ##########
# It imports what a gunicorn worker and the HEALTHCHECK import, byte-compiles that (the root filesystem is
# read-only at run time), and copies to /rootfs: the interpreter, those standard-library modules (whole
# packages), the venv, /app, the shared libraries all of them need (ldd), and for Trivy and SBOM tools
# the dpkg status, file lists and copyright files of exactly the Debian packages that own those files,
# with /etc/os-release; a passwd/group with the app user (UID/GID 10001, no home, no login shell).
FROM builder AS rootfs
COPY service/gunicorn.conf.py /app/gunicorn.conf.py
COPY tools/image/rootfs.py /usr/local/lib/mnistlite-image/rootfs.py
RUN /opt/venv/bin/python -I /usr/local/lib/mnistlite-image/rootfs.py /rootfs

########## runtime: from scratch, the files above and the model ##########
FROM scratch AS runtime
COPY --from=rootfs /rootfs /

# Debian's python3 brings no pip (that is python3-pip, not installed), and the venv's own pip is
# uninstalled above. The interpreter is the venv's (PATH), which finds Debian's standard library.
ENV PATH=/opt/venv/bin:/usr/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    MNISTLITE_MODEL=/app/model/model.npz \
    PORT=8000 \
    TMPDIR=/tmp

WORKDIR /app
# Last: a new model rebuilds only this layer.
COPY model/model.npz /app/model/model.npz

# Late, so that new values do not invalidate the layers above.
ARG BASE_TAG
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=https://github.com/OWNER/mnistlite
LABEL org.opencontainers.image.title="mnistlite" \
      org.opencontainers.image.description="Pure-numpy MNIST MLP served by Falcon and gunicorn" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/debian:${BASE_TAG}"

USER 10001:10001
EXPOSE 8000

# No shell and no curl: the interpreter probes /readiness where gunicorn binds (service/healthcheck.py:
# MNISTLITE_BIND, else 0.0.0.0:$PORT; a wildcard host is probed on loopback). Not 200 -> exit 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-m", "service.healthcheck"]

CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "service.wsgi:app"]
