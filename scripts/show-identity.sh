#!/usr/bin/env bash
# `make run` for now: show the station's identity, creating the repo first if there is none
# (`ipfm init` prints the identity itself; otherwise `ipfm key show` does).
# Usage: scripts/show-identity.sh IPFM_BINARY REPO_DIR
set -euo pipefail

ipfm="$1"
repo="$2"

if [ -e "$repo" ]; then
  "$ipfm" key show --repo "$repo"
else
  echo "ipfm: no repo at $repo, creating one"
  "$ipfm" init --repo "$repo"
fi
