#!/bin/sh
# Container entry point: create the repository on first start (idempotent), then run ipfm.
set -eu
ipfm init >/dev/null
exec ipfm "$@"
