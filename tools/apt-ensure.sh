#!/usr/bin/env bash
# Debian packages that provide commands, installed with apt when missing (never a download from
# elsewhere): the one body of tools/install-browser.sh, install-prometheus.sh and install-registry.sh.
#   apt-ensure.sh WHO OTHERWISE PACKAGE=COMMAND...
# WHO names the caller in messages; OTHERWISE says what happens without the packages. Needs root (CI
# runs as root); elsewhere it says what to run and exits 0, or 1 under CI=true unless the caller set
# APT_ENSURE_CI_OPTIONAL=1.
set -euo pipefail
who=$1 otherwise=$2
shift 2
missing=() commands=()
for pair in "$@"; do
  commands+=("${pair#*=}")
  command -v "${pair#*=}" >/dev/null 2>&1 || missing+=("${pair%%=*}")
done
if [ ${#missing[@]} = 0 ]; then
  echo "$who: ${commands[*]} present" >&2
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "$who: installing Debian's ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"; }
  apt_install || { apt-get -o DPkg::Lock::Timeout=600 update && apt_install; }
  exit 0
fi
echo "$who: ${missing[*]} missing and not root: run" \
     "'sudo apt-get install --no-install-recommends ${missing[*]}'; $otherwise" >&2
if [ "${CI:-}" = "true" ] && [ "${APT_ENSURE_CI_OPTIONAL:-0}" != 1 ]; then exit 1; fi
