#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/web/browser/) when /usr/bin/chromium is
# missing. Needs root and apt-get (CI runs as root); otherwise says what to run and exits 1.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
    echo "Chromium is missing: sudo apt-get install chromium (Debian/Ubuntu)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
"$CHROMIUM" --version 2>/dev/null  # the Debian wrapper chats on stderr
