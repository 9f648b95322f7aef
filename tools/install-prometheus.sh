#!/usr/bin/env bash
# Prometheus and promtool for the alert-rule tests (tests/monitoring) and the `monitor` stage of
# `make pipeline`: Debian's `prometheus` package, installed with apt when missing (never a download).
# The package may try to start a system service; nothing here uses it, the tests run their own server
# on 127.0.0.1. Needs root (CI runs as root); elsewhere it says what to run. Under CI=true a missing
# Prometheus is an error; locally the tests that need it then skip with the same message.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  echo "tools/install-prometheus.sh: prometheus and promtool present" >&2
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "tools/install-prometheus.sh: installing Debian's prometheus (prometheus + promtool)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends prometheus; }
  apt_install || { apt-get -o DPkg::Lock::Timeout=600 update && apt_install; }
  exit 0
fi
echo "tools/install-prometheus.sh: prometheus/promtool missing and not root: run" \
     "'sudo apt-get install --no-install-recommends prometheus'; the tests that need it will skip" >&2
if [ "${CI:-}" = "true" ]; then exit 1; fi
