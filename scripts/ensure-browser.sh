#!/usr/bin/env bash
# Headless Chromium for tests/test_browser.py: Debian's package, installed only when missing.
# (Playwright drives it via executable_path; `playwright install` downloads are never used.)
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
