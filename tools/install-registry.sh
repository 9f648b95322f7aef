#!/usr/bin/env bash
# A local image registry and the tools that copy, sign and verify images by digest, for the `serve` and
# `rollback` stages of `make pipeline`: Debian's `docker-registry` (the CNCF distribution server),
# `skopeo` (inspects and signs by digest) and `gnupg` (skopeo's signing keys), installed with apt when
# missing (never a download). Needs root (CI runs as root); elsewhere it says what to run. Under
# CI=true a missing tool is an error only where a container engine exists (otherwise the rehearsal
# serves from the source tree and needs none of these).
set -euo pipefail

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
if [ ${#missing[@]} = 0 ]; then
  echo "tools/install-registry.sh: docker-registry, skopeo and gpg present" >&2
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "tools/install-registry.sh: installing Debian's ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"; }
  apt_install || { apt-get -o DPkg::Lock::Timeout=600 update && apt_install; }
  exit 0
fi
echo "tools/install-registry.sh: ${missing[*]} missing and not root: run" \
     "'sudo apt-get install --no-install-recommends ${missing[*]}'; the rehearsal then serves from the source tree" >&2
if [ "${CI:-}" = "true" ] && { command -v dockerd >/dev/null 2>&1 || command -v docker >/dev/null 2>&1; }; then exit 1; fi
