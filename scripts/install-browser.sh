#!/usr/bin/env bash
# Install Debian's Chromium for the headless browser tests (the player page), only if it is
# missing: a machine that already has it runs no apt command at all (and needs no network).
# The tests drive it with npm `playwright-core` (tests/browser), which downloads no browser.
set -euo pipefail

PACKAGES=(chromium)

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "apt: browser packages present (${PACKAGES[*]})"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "error: missing Debian packages: ${missing[*]}" >&2
  echo "       not root and no sudo: install them as root, then run make again" >&2
  exit 1
fi

echo "apt: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
