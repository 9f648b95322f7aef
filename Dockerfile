# mnistlite service image: numpy MLP behind Falcon + gunicorn, on Debian trixie's own python3.
#
# Build context = repository root, after a model exists at model/model.npz:
#   make image                      # trains model/model.npz if missing, builds mnistlite:dev
#   docker build -t mnistlite:dev . # where the registry is reachable (GitHub's runners)
# The image runs as UID 10001 with a read-only root filesystem; it writes only to /tmp.
#
# The base: the official debian:trixie-slim, pinned by the digest of its multi-arch index. Where no
# registry is reachable, tools/image.sh builds the same suite from the Debian archive with mmdebstrap,
# imports it as debian:trixie-slim and passes --build-arg BASE_TAG=trixie-slim.
ARG BASE_TAG=trixie-slim@sha256:d7e12182ce18b85b93007c1dedf31f2d29e01ccf3182cc4017c709b6259bc132

# Byte-compile exactly the modules the service and its HEALTHCHECK import at start-up, service.wsgi
# included (importing it would load a model), under the prefix given as argument: gunicorn's gevent
# worker with the standard library it patches and its hub (patch_all and get_hub run here as in a
# worker), and importlib's resource readers (service/page.py reads the page through them). The root
# filesystem is read-only, so no .pyc can be written at run time, and compiling numpy & co from
# source on every start would slow every start-up. Hash-based .pyc: mtimes do not matter.
ARG PRECOMPILE="import compileall, importlib.util, sys, encodings.cp437, urllib.request, service.app, gunicorn.app.wsgiapp, gunicorn.glogging, gunicorn.workers.ggevent, service.connection, importlib.readers, importlib.resources._adapters, importlib.resources.readers, prometheus_client.multiprocess, pyspng, threadpoolctl, PIL.BmpImagePlugin, PIL.GifImagePlugin, PIL.JpegImagePlugin, PIL.MpoImagePlugin, PIL.PngImagePlugin, PIL.PpmImagePlugin, PIL.TiffImagePlugin, PIL.WebPImagePlugin, gevent.monkey; gevent.monkey.patch_all(); gevent.get_hub(); mode = compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH; files = [getattr(m, '__file__', None) or '' for m in list(sys.modules.values())] + [importlib.util.find_spec('service.wsgi').origin]; [compileall.compile_file(f, quiet=1, invalidation_mode=mode) for f in files if f.startswith(sys.argv[1]) and f.endswith('.py')]"

########## python: the base + Debian's python3 (the interpreter both later stages share) ##########
FROM debian:${BASE_TAG} AS python
ARG DEBIAN_FRONTEND=noninteractive
# Debian byte-compiles the whole standard library at install time (12 MB of .pyc, generated, not
# part of any package): dropped here; the runtime stage compiles only what the service imports.
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
# numpy's f2py/C headers/static libraries/SIMD test modules, Pillow's optional AVIF codec, fonts,
# colour management and Tk glue (the PRECOMPILE imports below load every Pillow plugin the service
# decodes with), gevent's test harness, its libuv loop and c-ares resolver (the worker uses the
# default libev loop and thread resolver), Falcon's benchmarks, C/C++/Cython sources and headers.
# Every *.dist-info stays whole (METADATA is what SBOM tools read). Extension modules and their
# bundled libraries lose their symbol tables and debug sections (strip --strip-unneeded keeps the
# dynamic symbols they link by).
# Then byte-compile what the service imports from the venv (PRECOMPILE, above).
ARG PRECOMPILE
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
 && sp="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
 && rm -rf "$sp"/numpy/f2py "$sp"/numpy/_core/include "$sp"/numpy/_pyinstaller \
           "$sp"/numpy/_core/_simd.*.so "$sp"/numpy/_core/_multiarray_tests.*.so /opt/venv/bin/f2py \
           "$sp"/PIL/_avif.*.so "$sp"/pillow.libs/libavif-* \
           "$sp"/PIL/_imagingft.*.so "$sp"/pillow.libs/libfreetype-* "$sp"/pillow.libs/libharfbuzz-* \
           "$sp"/pillow.libs/libbrotli* "$sp"/PIL/_imagingcms.*.so "$sp"/pillow.libs/liblcms2-* \
           "$sp"/PIL/_imagingtk.*.so \
           "$sp"/numpy/random/_examples "$sp"/numpy/random/lib "$sp"/numpy/_core/lib \
           "$sp"/gevent/testing "$sp"/gevent/libuv "$sp"/gevent/resolver/cares.*.so "$sp"/falcon/bench \
           "$sp"/greenlet/platform \
 && find "$sp" -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.pyx' \
                          -o -name '*.pxd' \) -delete \
 && find /opt/venv -type f -name '*.so*' -exec strip --strip-unneeded {} + \
 && /opt/venv/bin/python -I -c "$PRECOMPILE" /opt/venv

########## runtime ##########
FROM python AS runtime

# The unprivileged user the chart runs as (UID/GID 10001, no home, no login shell). Debian's python3
# brings no pip (that is python3-pip, not installed), and the venv's own pip is uninstalled above.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    MNISTLITE_MODEL=/app/model/model.npz \
    PORT=8000 \
    TMPDIR=/tmp

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY service/gunicorn.conf.py /app/gunicorn.conf.py
# The standard library's share of PRECOMPILE, and gunicorn's config file (checked-hash: a config
# mounted over it is read afresh, never its stale .pyc).
ARG PRECOMPILE
RUN python -I -c "$PRECOMPILE" /usr/lib/python3 \
 && python -I -m compileall -q --invalidation-mode checked-hash /app/gunicorn.conf.py
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

# The image has no curl: probe with the interpreter it already has, at the address gunicorn binds
# (MNISTLITE_BIND, else 0.0.0.0:$PORT; a wildcard host is probed on loopback). 503 -> exit 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; b = os.environ.get('MNISTLITE_BIND') or '0.0.0.0:' + os.environ.get('PORT', '8000'); h, _, p = b.rpartition(':'); h = h.strip('[]'); h = {'': '127.0.0.1', '0.0.0.0': '127.0.0.1', '::': '::1'}.get(h, h); urllib.request.urlopen('http://%s:%s/readiness' % ('[%s]' % h if ':' in h else h, p), timeout=4)"]

CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "service.wsgi:app"]
