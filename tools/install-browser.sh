#!/usr/bin/env bash
# Headless Chromium for the page's browser test (tests/service/page/test_page_browser.py): Debian's `chromium`
# and `chromium-driver`, installed with apt when missing. Neither Selenium nor anything else downloads a
# browser. Needs root (CI runs as root); elsewhere it says what to run. Under CI=true a missing browser
# is an error; locally the browser test then skips with the same message.
set -euo pipefail

exec bash "$(dirname "$0")/apt-ensure.sh" tools/install-browser.sh "the browser test will skip" \
  chromium=chromium chromium-driver=chromedriver
