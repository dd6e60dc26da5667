#!/usr/bin/env bash
# Run a command in a fresh network namespace that has only a loopback interface, so tests
# provably cannot reach anything but 127.0.0.1. Needs root (unshare -n); without it, or where
# the kernel refuses new namespaces, the command runs in the normal namespace with a warning.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi

if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1 \
  && unshare -n sh -c 'ip link set lo up' >/dev/null 2>&1; then
  exec unshare -n -- sh -c 'ip link set lo up && exec "$0" "$@"' "$@"
fi

echo "warning: cannot create a network namespace (needs root, unshare and ip);" \
  "running without network isolation: $*" >&2
exec "$@"
