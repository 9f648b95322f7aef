#!/usr/bin/env bash
# The service image on this machine, with no registry: engine, Debian base, build, checks.
#
#   tools/image.sh engine  a container engine that answers: $DOCKER_HOST, the system's, or our own
#                          dockerd (Debian's docker.io, installed if missing) under $MNISTLITE_DOCKER_DIR
#   tools/image.sh base    debian:trixie-slim built from the Debian archive with mmdebstrap, unless present
#   tools/image.sh build   base + `docker build` of $IMAGE (needs model/model.npz; `make image` makes it);
#                          $BUILD_CONTEXT (default .) may name another context holding the same files
#                          (`make pipeline` builds each promoted model this way)
#   tools/image.sh check   the checks cicd.yml runs on the image: size, user, no pip, read-only start,
#                          HEALTHCHECK, /predict, /metrics, SIGTERM, SBOM
#   tools/image.sh contents  $IMAGE's Debian packages and Python distributions with their sizes (Markdown)
#   tools/image.sh stop    stop the dockerd this script started (the cache stays for the next run)
#
# Exit status 3: no engine can start here (the reason is printed); anything else non-zero: a failure.
# Everything persistent lives in $MNISTLITE_DOCKER_DIR (default ~/.cache/mnistlite-docker): the
# engine's data root (base image and build cache), the base's tarball, the SBOM tool.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-mnistlite:dev}
CACHE=${MNISTLITE_DOCKER_DIR:-$HOME/.cache/mnistlite-docker}
BASE_IMAGE=debian:trixie-slim
BASE_SUITE=trixie
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
export DOCKER_BUILDKIT=1

say() { printf '[image] %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }
no_engine() { say "no container engine can start here: $*"; exit 3; }

# ------------------------------------------------------------------ engine ------------------------

# A docker CLI that can build with BuildKit, the first on PATH that has one of: the buildx plugin, or
# a built-in BuildKit client (the CLI before 23.0, e.g. Debian 12's docker.io). A newer CLI without
# buildx would fall back to the legacy builder, which has no RUN --mount. Without either, the first
# `docker` on PATH (good enough to ask an engine for `info`), and BUILDKIT_CLI stays empty.
# Called again after install_engine: the CLI that package brings may be the only one that builds.
DOCKER_GIVEN=${DOCKER:-}
BUILDKIT_CLI=
builds_with_buildkit() {
  local v
  "$1" buildx version >/dev/null 2>&1 && return 0
  v=$("$1" --version 2>/dev/null) || return 1
  v=${v#Docker version }
  [[ $v =~ ^[0-9]+ ]] && [ "${BASH_REMATCH[0]}" -lt 23 ]
}
pick_cli() {
  local c
  if [ -n "$DOCKER_GIVEN" ]; then
    DOCKER=$DOCKER_GIVEN
    builds_with_buildkit "$DOCKER" && BUILDKIT_CLI=$DOCKER
  else
    DOCKER=docker BUILDKIT_CLI=
    while read -r c; do
      if [ -n "$c" ] && builds_with_buildkit "$c"; then DOCKER=$c BUILDKIT_CLI=$c; break; fi
    done < <(type -ap docker)
  fi
  export DOCKER
}

answers() { "$DOCKER" info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

install_engine() {
  [ "$(id -u)" = 0 ] || no_engine "dockerd is not installed and only root can install Debian's docker.io"
  command -v apt-get >/dev/null || no_engine "dockerd is not installed and there is no apt-get"
  say "installing Debian's docker.io"
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends docker.io >&2 \
    || { apt-get update >&2 && apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends docker.io >&2; } \
    || no_engine "apt-get could not install docker.io"
}

engine() {
  pick_cli
  if command -v "$DOCKER" >/dev/null && [ -n "${DOCKER_HOST:-}" ]; then
    answers && return
    no_engine "DOCKER_HOST=$DOCKER_HOST does not answer"
  fi
  # An engine that already runs (GitHub's runners, Docker Desktop, a system service).
  if command -v "$DOCKER" >/dev/null && answers; then return; fi
  # Our own dockerd, started once and reused.
  export DOCKER_HOST="unix://$CACHE/run/docker.sock"
  if command -v "$DOCKER" >/dev/null && answers; then return; fi
  command -v dockerd >/dev/null || install_engine
  pick_cli  # again: install_engine may have brought the only CLI that builds
  mkdir -p "$CACHE/data" "$CACHE/exec" "$CACHE/run"
  exec 9>"$CACHE/engine.lock"
  flock 9
  answers && return  # another invocation started it meanwhile
  say "starting dockerd (data root $CACHE/data, log $CACHE/dockerd.log)"
  # Own data root, exec root and socket; --bridge=none --iptables=false: the machine's network
  # settings stay untouched, so builds and containers use --network=host.
  setsid dockerd --data-root "$CACHE/data" --exec-root "$CACHE/exec" --pidfile "$CACHE/run/dockerd.pid" \
    -H "$DOCKER_HOST" --bridge=none --iptables=false --ip-masq=false \
    >"$CACHE/dockerd.log" 2>&1 < /dev/null &
  local pid=$! t
  for t in $(seq 1 120); do
    answers && { say "dockerd $("$DOCKER" info --format '{{.ServerVersion}}') up (pid $pid); it keeps running for the next build: \`make image-stop\` stops it"; STARTED=started; return; }
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 15 "$CACHE/dockerd.log" >&2
      no_engine "dockerd exited: $(grep -m1 -iE 'level=(fatal|error)' "$CACHE/dockerd.log" || tail -n1 "$CACHE/dockerd.log")"
    fi
    sleep 0.5
  done
  tail -n 15 "$CACHE/dockerd.log" >&2
  no_engine "dockerd did not answer within 60 s"
}

stop() {
  local pidfile="$CACHE/run/dockerd.pid" pid t
  [ -s "$pidfile" ] || { say "no dockerd of ours is running"; return 0; }
  pid=$(cat "$pidfile")
  if ! kill -0 "$pid" 2>/dev/null || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]; then
    say "no dockerd of ours is running"; rm -f "$pidfile"; return 0
  fi
  kill -TERM "$pid"
  for t in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { say "dockerd (pid $pid) stopped"; return 0; }; sleep 0.5; done
  die "dockerd (pid $pid) did not stop within 30 s"
}

# ------------------------------------------------------------------ base --------------------------

# How the official debian:*-slim images are made (debuerreotype): a minbase debootstrap of the suite
# from the Debian archive, docs/man/locales excluded by dpkg, an apt hook that deletes fetched .debs,
# sources in deb822 form. Differences from the published image: see docs/deploy.md ("The image").
base() {
  engine
  if "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "base $BASE_IMAGE present ($(image_mb "$BASE_IMAGE") MB), reused; \`docker rmi $BASE_IMAGE\` to rebuild it"
    return
  fi
  command -v mmdebstrap >/dev/null || {
    [ "$(id -u)" = 0 ] || die "mmdebstrap is missing: apt-get install mmdebstrap (as root)"
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends mmdebstrap >&2
  }
  mkdir -p "$CACHE/base"
  local tar="$CACHE/base/$BASE_SUITE-slim.tar" start=$SECONDS
  say "building $BASE_IMAGE with mmdebstrap from the Debian archive"
  mmdebstrap --variant=minbase --format=tar --quiet \
    --aptopt='Acquire::Languages "none"' \
    --aptopt='APT::AutoRemove::SuggestsImportant "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/groff/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/usr/share/linda/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='copy-in tools/image/docker-clean /etc/apt/apt.conf.d' \
    --customize-hook='rm -f "$1/etc/apt/sources.list"' \
    --customize-hook='copy-in tools/image/debian.sources /etc/apt/sources.list.d' \
    --customize-hook='rm -rf "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/* "$1"/var/log/apt/* "$1"/var/log/dpkg.log' \
    "$BASE_SUITE" "$tar.part" \
    "deb http://deb.debian.org/debian $BASE_SUITE main" \
    "deb http://deb.debian.org/debian $BASE_SUITE-updates main" \
    "deb http://deb.debian.org/debian-security $BASE_SUITE-security main" >&2
  mv "$tar.part" "$tar"
  "$DOCKER" import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tar" "$BASE_IMAGE" >/dev/null
  rm -f "$tar"
  say "base $BASE_IMAGE built in $((SECONDS - start)) s: $(image_mb "$BASE_IMAGE") MB"
}

image_mb() { "$DOCKER" image inspect "$1" --format '{{.Size}}' | awk '{printf "%.1f", $1 / 1e6}'; }

# ------------------------------------------------------------------ build -------------------------

build() {
  local context=${BUILD_CONTEXT:-.}
  [ -f "$context/model/model.npz" ] || die "$context/model/model.npz is missing: run \`make image\` (it trains one) or \`make train\`"
  base
  [ -n "$BUILDKIT_CLI" ] || die "the docker CLI $DOCKER ($("$DOCKER" --version 2>&1)) has no buildx plugin and no built-in BuildKit client, so it would use the legacy builder (no RUN --mount): put Debian's docker.io CLI or one with buildx first on PATH, or set DOCKER"
  local start=$SECONDS secret=()
  # pip in the build trusts the image's CA bundle only; the registries may be reached through a
  # proxy whose CA only this machine's bundle holds. A BuildKit secret never lands in a layer.
  [ -s "$CA_BUNDLE" ] && secret=(--secret "id=ca,src=$CA_BUNDLE")
  say "building $IMAGE"
  "$DOCKER" build --network=host "${secret[@]}" \
    --build-arg "BASE_TAG=${BASE_IMAGE#debian:}" \
    --build-arg "VERSION=$(git describe --always --dirty 2>/dev/null || echo dev)" \
    --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    --build-arg "CREATED=$(git log -1 --format=%cI 2>/dev/null || echo unknown)" \
    --file Dockerfile --tag "$IMAGE" "$context"
  say "built $IMAGE in $((SECONDS - start)) s: $(image_mb "$IMAGE") MB"
}

case "${1:-}" in
  engine)  # prints "started" when this call started our dockerd, else "running"
    STARTED=running; engine; say "engine: ${DOCKER_HOST:-the default socket}, CLI $DOCKER"; echo "$STARTED" ;;
  base) base ;;
  build) build ;;
  check) engine; exec bash tools/image_check.sh ;;
  contents)
    engine
    cid=$("$DOCKER" create "$IMAGE")
    trap '"$DOCKER" rm "$cid" >/dev/null' EXIT
    "$DOCKER" export "$cid" | python3 tools/image/contents.py - ;;
  stop) stop ;;
  *) echo "usage: $0 engine|base|build|check|contents|stop" >&2; exit 2 ;;
esac
