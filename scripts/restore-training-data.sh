#!/usr/bin/env bash
# The guide's `bash scripts/restore-training-data.sh …`: a shim for `mailvoice restore …`.
exec bash "$(dirname "${BASH_SOURCE[0]}")/_mailvoice.sh" restore "$@"
