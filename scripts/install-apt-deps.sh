#!/usr/bin/env bash
# Install the Debian packages ipfm needs to build and test, but only those that are missing:
# a machine that already has them all runs no apt command at all (and needs no network).
#   ffmpeg dev libraries + pkg-config + clang/libclang: the encoder crate (bindgen);
#   ffmpeg: test fixtures; iproute2 + util-linux: `ip` and `unshare` for loopback-only tests.
# Usage: scripts/install-apt-deps.sh [PACKAGE...]   (no arguments: the build and test set)
set -euo pipefail

if [ "$#" -gt 0 ]; then
  PACKAGES=("$@")
else
  PACKAGES=(
    libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev libswresample-dev libswscale-dev
    pkg-config clang libclang-dev ffmpeg iproute2 util-linux
  )
fi

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done
# A Debian system python3 only creates venvs with ensurepip, which lives in python3-venv.
if [ "$#" -eq 0 ] && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  is_installed python3-venv || missing+=(python3-venv)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "apt: all ${#PACKAGES[@]} packages present (${PACKAGES[*]})"
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
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
