#!/usr/bin/env bash
# Lint the Dockerfile with hadolint (installed into .venv by `make deps`), if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f Dockerfile ]; then
  echo "hadolint: no Dockerfile, nothing to lint"
  exit 0
fi
if [ ! -x .venv/bin/hadolint ]; then
  echo "error: .venv/bin/hadolint not found: run \`make deps\`" >&2
  exit 1
fi
.venv/bin/hadolint Dockerfile
echo "hadolint: Dockerfile ok"
