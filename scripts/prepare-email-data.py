#!/usr/bin/env python3
"""The guide's `python scripts/prepare-email-data.py …`: a shim for `mailvoice prepare …`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # works without an install too
from mailvoice.cli import main  # noqa: E402

sys.exit(main(["prepare", *sys.argv[1:]]))
