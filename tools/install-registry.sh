#!/usr/bin/env bash
# A local image registry and the tools that copy, sign and verify images by digest, for the `serve` and
# `rollback` stages of `make pipeline`: Debian's `docker-registry` (the CNCF distribution server),
# `skopeo` (inspects and signs by digest) and `gnupg` (skopeo's signing keys), installed with apt when
# missing (never a download). Needs root (CI runs as root); elsewhere it says what to run. Under
# CI=true a missing tool is an error only where a container engine exists (otherwise the rehearsal
# serves from the source tree and needs none of these).
set -euo pipefail

# Needed under CI only where a container engine exists.
if ! command -v dockerd >/dev/null 2>&1 && ! command -v docker >/dev/null 2>&1; then
  export APT_ENSURE_CI_OPTIONAL=1
fi
exec bash "$(dirname "$0")/apt-ensure.sh" tools/install-registry.sh "the rehearsal then serves from the source tree" \
  docker-registry=docker-registry skopeo=skopeo gnupg=gpg
