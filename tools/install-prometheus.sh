#!/usr/bin/env bash
# Prometheus and promtool for the alert-rule tests (tests/monitoring) and the `monitor` stage of
# `make pipeline`: Debian's `prometheus` package, installed with apt when missing (never a download).
# The package may try to start a system service; nothing here uses it, the tests run their own server
# on 127.0.0.1. Needs root (CI runs as root); elsewhere it says what to run. Under CI=true a missing
# Prometheus is an error; locally the tests that need it then skip with the same message.
set -euo pipefail

exec bash "$(dirname "$0")/apt-ensure.sh" tools/install-prometheus.sh "the tests that need it will skip" \
  prometheus=prometheus prometheus=promtool
