#!/usr/bin/env bash
# The guide's `bash scripts/cleanup-sensitive-data.sh …`: a shim for `mailvoice cleanup …`.
exec bash "$(dirname "${BASH_SOURCE[0]}")/_mailvoice.sh" cleanup "$@"
