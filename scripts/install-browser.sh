#!/usr/bin/env bash
# Install Debian's Chromium for the headless browser tests (the player page), only if it is
# missing. The tests drive it with npm `playwright-core` (tests/browser), which downloads no
# browser of its own.
set -euo pipefail
exec "$(dirname "$0")/install-apt-deps.sh" chromium
