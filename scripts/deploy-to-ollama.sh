#!/usr/bin/env bash
# The guide's `bash scripts/deploy-to-ollama.sh …`: a shim for `mailvoice deploy …`.
exec bash "$(dirname "${BASH_SOURCE[0]}")/_mailvoice.sh" deploy "$@"
