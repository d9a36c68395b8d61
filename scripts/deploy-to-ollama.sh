#!/usr/bin/env bash
# The guide's `bash scripts/deploy-to-ollama.sh …`: a shim for `mailvoice deploy …`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${MAILVOICE_PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x "$here/.venv/bin/python" ]; then py="$here/.venv/bin/python"; else py="$(command -v python3)"; fi
fi
PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m mailvoice deploy "$@"
