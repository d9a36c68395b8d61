"""`mailvoice explain FILE.eml` as a subprocess: the text exactly as trained on (PII as placeholders),
and with --user-id the signatures `prepare` learned for that user (data/clean-profile.json)."""

from __future__ import annotations

import hashlib
import json
import mailbox
import os
import stat
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SIG = "Willow Creek Design Group\nWe design gardens that grow with you, season after season, year after year."
PHONE, ADDR, URL = "415-555-0142", "dana.reyes@example.com", "https://willowcreek-design.example/plans/spring"


def run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MAILVOICE_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "mailvoice", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def message(i: int, body: str) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "Dana Reyes <dana@willowcreek-design.example>"
    m["To"] = "Sam Ortiz <sam@example.com>"
    m["Subject"] = f"Planting plan {i}"
    m["Message-ID"] = f"<plan{i}@willowcreek-design.example>"
    m["Date"] = f"Mon, {i % 27 + 1:02d} Jan 2026 10:00:00 +0000"
    m.set_content(body)
    return m


def body(i: int) -> str:
    return (f"Hi Sam! Quick thought on the planting plan number {i}: the birches go by the north fence "
            f"and the lavender along the path.\n\nCheers,\nDana\n\n{SIG}\n")


PII_BODY = (f"Hi Sam,\n\nCall me on {PHONE} or write to {ADDR}; the drawings are at {URL} for now.\n\n"
            f"Cheers,\nDana\n\n{SIG}\n")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A user 'dana' prepared from 12 messages that all end in the same signature block."""
    tmp = tmp_path_factory.mktemp("clean-cli")
    box = mailbox.mbox(str(tmp / "sent.mbox"))
    for i in range(12):
        box.add(message(i, body(i)))
    box.add(message(99, PII_BODY))
    box.close()
    eml = tmp / "pii.eml"
    eml.write_bytes(bytes(message(99, PII_BODY)))
    ws = tmp / "ws"
    r = run("prepare", "--user-id", "dana", "--source", str(tmp / "sent.mbox"), "--user-email",
            "dana@willowcreek-design.example", "--min-emails", "5", "--workspace", str(ws))
    assert r.returncode == 0, r.stderr
    return tmp, ws, eml


def test_clean_prints_the_scrubbed_training_text(prepared):
    _tmp, _ws, eml = prepared
    r = run("explain", str(eml))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for raw in (PHONE, ADDR, URL):
        assert raw not in out  # the raw values never reach stdout
    assert "<PHONE>" in out and "<EMAIL>" in out and "<URL>" in out
    assert out.startswith("Hi Sam,") and "Cheers,\nDana" in out  # the sender's own name is protected
    assert SIG.split("\n")[0] in out  # nothing learned without --user-id: the block stays
    j = json.loads(run("explain", "--json", str(eml)).stdout)
    assert j["text"] == out.rstrip("\n")
    assert j["pii"] == {"PHONE": 1, "EMAIL": 1, "URL": 1}


def test_prepare_persists_the_profile_and_clean_user_id_applies_it(prepared):
    _tmp, ws, eml = prepared
    prof = ws / "dana" / "data" / "clean-profile.json"
    assert stat.S_IMODE(prof.stat().st_mode) == 0o600
    p = json.loads(prof.read_text())
    assert p["schema"] == 1 and p["signatures"] == [SIG] and p["learned_signatures"] == 1
    assert "Dana Reyes" in p["protected_names"] and p["keep_urls"] is False

    r = run("explain", "--user-id", "dana", "--workspace", str(ws), str(eml))
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip("\n").endswith("Cheers,\nDana") and "Willow Creek" not in r.stdout
    assert "<PHONE>" in r.stdout and PHONE not in r.stdout
    assert "learned signature" in r.stderr  # the removed zone and its reason

    # exactly what prepare trained on for this message
    j = json.loads(run("explain", "--json", "--user-id", "dana", "--workspace", str(ws), str(eml)).stdout)
    want = hashlib.sha256(b"plan99@willowcreek-design.example").hexdigest()[:16]
    rows = [json.loads(x) for f in ("train_alpaca.jsonl", "val_alpaca.jsonl")
            for x in (ws / "dana" / "data" / f).read_text().splitlines() if x.strip()]
    trained = [row for row in rows if row["id"] == want]
    assert len(trained) == 1 and trained[0]["output"] == j["text"]


def test_clean_user_id_errors(prepared, tmp_path):
    _tmp, ws, eml = prepared
    for args, needle in (
        (("--user-id", "nobody", "--workspace", str(ws), str(eml)), "no cleaning profile"),
        (("--user-id", "../etc", "--workspace", str(ws), str(eml)), "invalid user id"),
        (("--user-id", "dana", "--workspace", str(ws), str(tmp_path / "missing.eml")), "no such file"),
    ):
        r = run("explain", *args)
        assert r.returncode != 0 and "Traceback" not in r.stderr
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and needle in errors[0], r.stderr
        assert r.stdout == ""
    bad = ws / "dana" / "data" / "clean-profile.json"
    saved = bad.read_text()
    try:
        bad.write_text('{"schema": 99}')
        r = run("explain", "--user-id", "dana", "--workspace", str(ws), str(eml))
        assert r.returncode != 0 and "unsupported cleaning profile" in r.stderr and "Traceback" not in r.stderr
    finally:
        bad.write_text(saved)


def test_profile_round_trip_and_refusals(tmp_path):
    from mailvoice.dataset.clean_profile import CleanProfile, read_profile, write_profile
    from mailvoice.errors import MailvoiceError

    prof = CleanProfile(signatures=(SIG,), protected_names=("Dana Reyes", "Dana"), keep_urls=True, learned=1)
    path = write_profile(tmp_path / "clean-profile.json", prof)
    assert read_profile(path) == prof and stat.S_IMODE(path.stat().st_mode) == 0o600
    for text, needle in (("not json", "unreadable"), ("[1]", "unsupported"), ('{"schema": 2}', "unsupported"),
                         ('{"schema": 1, "signatures": [1], "protected_names": []}', "malformed")):
        path.write_text(text)
        with pytest.raises(MailvoiceError, match=needle):
            read_profile(path)
    with pytest.raises(MailvoiceError, match="run mailvoice prepare"):
        read_profile(tmp_path / "absent.json")


def test_old_name_clean_still_works_with_a_note(prepared):
    """`clean` was renamed `explain` (it sat next to `cleanup`): hidden, same output, one note on stderr."""
    _tmp, _ws, eml = prepared
    old, new = run("clean", "--json", str(eml)), run("explain", "--json", str(eml))
    assert old.returncode == 0, old.stderr
    assert old.stdout == new.stdout
    notes = [ln for ln in old.stderr.splitlines() if ln.strip()]
    assert notes == ["note: `mailvoice clean` is now `mailvoice explain`; the old name still works for now"]
    assert "note:" not in new.stderr
    helptext = run("--help").stdout
    assert "explain" in helptext and " clean " not in helptext  # hidden from --help
