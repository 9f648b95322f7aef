#!/usr/bin/env bash
# Headless Chromium for the page's browser test (tests/service/page/test_page_browser.py): Debian's `chromium`
# and `chromium-driver`, installed with apt when missing. Neither Selenium nor anything else downloads a
# browser. Needs root (CI runs as root); elsewhere it says what to run. Under CI=true a missing browser
# is an error; locally the browser test then skips with the same message.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "tools/install-browser.sh: chromium and chromedriver present" >&2
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "tools/install-browser.sh: installing Debian's chromium and chromium-driver" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium chromium-driver; }
  apt_install || { apt-get -o DPkg::Lock::Timeout=600 update && apt_install; }
  exit 0
fi
echo "tools/install-browser.sh: chromium/chromedriver missing and not root: run" \
     "'sudo apt-get install --no-install-recommends chromium chromium-driver'; the browser test will skip" >&2
if [ "${CI:-}" = "true" ]; then exit 1; fi
