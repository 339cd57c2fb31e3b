#!/bin/sh
# tests/browser/check_browser.sh -- run check_browser.js (the web page in
# headless Chromium) from `make check`.
#
# Needs Debian's chromium and puppeteer-core from npm (./dev.sh deps installs
# both). Without them the test is skipped (exit 77); ./dev.sh check fails
# when it was skipped, so CI always runs it.
set -eu
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
modules=$(npm root -g 2>/dev/null || true)
if [ -z "$chromium" ] || [ ! -d "$modules/puppeteer-core" ] || ! command -v node >/dev/null; then
    echo "check_browser: SKIP: needs chromium, node and puppeteer-core (npm install -g puppeteer-core)"
    exit 77
fi
: "${REDIS_CHAT:?set by make check}" "${SRCDIR:?set by make check}"
out=${OUT:-$(dirname "$REDIS_CHAT")/browser-screenshots}
CHROMIUM=$chromium OUT=$out NODE_PATH=$modules${NODE_PATH:+:$NODE_PATH} \
    exec node "$SRCDIR/tests/browser/check_browser.js"
