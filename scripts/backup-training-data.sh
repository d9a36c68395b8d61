#!/usr/bin/env bash
# The guide's `bash scripts/backup-training-data.sh …`: a shim for `mailvoice backup …`.
exec bash "$(dirname "${BASH_SOURCE[0]}")/_mailvoice.sh" backup "$@"
