#!/usr/bin/env bash
# Runs `mailvoice VERB …` with the checkout's venv (or $MAILVOICE_PYTHON, or python3); the
# guide's shell scripts are one-line calls of this.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${MAILVOICE_PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x "$here/.venv/bin/python" ]; then py="$here/.venv/bin/python"; else py="$(command -v python3)"; fi
fi
PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m mailvoice "$@"
