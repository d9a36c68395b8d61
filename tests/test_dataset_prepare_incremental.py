"""prepare over IMAP twice: the second run adds only new mail, keeps the first run's records,
and a failed run never advances the UID state (so no mail is ever skipped)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dovecot import dovecot, imap_user, make_message  # noqa: E402,F401 (fixtures)

from mailvoice.dataset.build import DatasetOptions  # noqa: E402
from mailvoice.dataset.prepare import IMAP_STATE, prepare  # noqa: E402
from mailvoice.errors import MailvoiceError  # noqa: E402


def _msgs(ns):
    return [make_message(n, body=f"Hi friend! Here is note number {n} about the garden plan and the stones.\n\nCheers,\nMe\n")
            for n in ns]


def test_incremental_prepare_over_imap(dovecot, imap_user, tmp_path, monkeypatch):
    user, pw = imap_user
    monkeypatch.setenv("MAILVOICE_IMAP_PASSWORD", pw)
    spec = f"imap://{user}@{dovecot.host}:{dovecot.port}/Sent"
    out = tmp_path / "data"
    opts = DatasetOptions(min_emails=3)
    dovecot.append(user, pw, "Sent", _msgs(range(1, 5)))

    first = prepare(sources=[spec], out_dir=out, user_emails=["me@example.com"], opts=opts, notice=lambda m: None)
    assert first.metadata["counts"]["records"] == 4
    state = json.loads((out / IMAP_STATE).read_text())
    assert state  # UID state saved beside the dataset, after success

    # a failing run (too few emails for its threshold) writes nothing and does not advance the state
    dovecot.append(user, pw, "Sent", _msgs(range(5, 7)))
    with pytest.raises(MailvoiceError, match="need at least 100"):
        prepare(sources=[spec], out_dir=out, user_emails=["me@example.com"],
                opts=DatasetOptions(min_emails=100), notice=lambda m: None)
    assert json.loads((out / IMAP_STATE).read_text()) == state

    second = prepare(sources=[spec], out_dir=out, user_emails=["me@example.com"], opts=opts, notice=lambda m: None)
    assert second.metadata["counts"]["records"] == 6  # 4 carried over + 2 new, none lost
    ids = [json.loads(l)["message_id"] for l in (out / "records.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 6
    assert json.loads((out / IMAP_STATE).read_text()) != state
