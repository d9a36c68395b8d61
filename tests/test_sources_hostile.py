"""Hostile mail and hostile files (issue 15 items 4-8): the fixed corpus under
tests/fixtures/hostile, files that are not mail, escape sequences, forged senders, DB secrets."""

import json
import mailbox
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailvoice.clean import extract_author_text
from mailvoice.controls import escape_controls, has_controls, strip_controls
from mailvoice.errors import MailvoiceError
from mailvoice.sources import SourceStats, parse_message, read_sources
from mailvoice.sources.filters import process_raw
from mailvoice.sources.parse import MAX_FIELD_BYTES, BadMessage, parse_bytes

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "hostile"
ME = "dana@willowcreek-design.example"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging for ever (a FIFO opened blocking never returns)."""

    def boom(*_):
        raise TimeoutError(f"still running after {seconds}s: it would hang")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ the fixed corpus


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message(name):
    stats = SourceStats()
    rec = process_raw((CORPUS / name).read_bytes(), source="eml:x", labels=(), user_emails=frozenset({ME}), stats=stats)
    expect = dict(part.split(":", 1) for part in EXPECTED[name].replace("keep", "keep:").split() if part)
    if "keep" in expect:
        assert rec is not None, stats.as_dict()
        for value in (rec.text or "", rec.html or "", rec.subject, rec.from_name):
            assert not has_controls(value), repr(value)
        ex = extract_author_text(rec.text, rec.html)
        assert ex.text and not has_controls(ex.text), repr(ex.text)
    else:
        assert rec is None
        assert stats.dropped[expect["drop"]] == 1, stats.as_dict()
        if "error" in expect:
            assert stats.errors[expect["error"]] == 1, stats.as_dict()


def test_corpus_is_what_the_generator_writes(tmp_path):
    """The committed files are exactly make_corpus.py's output (so the corpus can be regenerated)."""
    import shutil

    shutil.copy(CORPUS / "make_corpus.py", tmp_path)
    subprocess.run([sys.executable, str(tmp_path / "make_corpus.py")], check=True, timeout=60)
    for name in EXPECTED:
        assert (tmp_path / name).read_bytes() == (CORPUS / name).read_bytes(), name


# ------------------------------------------------------------------ item 4: header caps


def _ct_message(n_params: int, nested: bool = False) -> bytes:
    params = "".join(f'; p{i}="v{i}"' for i in range(n_params))
    head = f"From: {ME}\r\nTo: s@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
    if nested:
        return (head + "Content-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\n"
                f"Content-Type: text/plain{params}\r\n\r\nhello there\r\n--Q--\r\n").encode()
    return (head + f"Content-Type: text/plain{params}\r\n\r\nhello there\r\n").encode()


@pytest.mark.parametrize("n_params,reason", [
    (10_000, "header_field_too_large"),  # ~137 KB: 2 s in the stdlib parser before the cap
    (45_000, "header_too_large"),  # ~618 KB: 31 s; the header block is past MAX_HEADER_BYTES
])
def test_content_type_with_many_params_is_skipped_before_parsing(n_params, reason):
    raw = _ct_message(n_params)
    with pytest.raises(BadMessage) as ei:
        parse_bytes(raw)
    assert ei.value.reason == reason


def test_big_header_in_a_nested_part_is_skipped():
    with pytest.raises(BadMessage) as ei:
        parse_bytes(_ct_message(5000, nested=True))
    assert ei.value.reason == "header_field_too_large"


def test_long_but_normal_headers_are_kept():
    """40 Received lines and 300 recipients stay under the caps."""
    received = "".join(f"Received: from relay{i}.example.net (relay{i}.example.net [192.0.2.{i}]) by mx.example.com "
                       f"with ESMTPS id abc{i}; Mon, 5 Jan 2026 10:00:{i % 60:02d} +0000\r\n" for i in range(40))
    to = ", ".join(f"Person {i} <p{i}@example.org>" for i in range(300))
    raw = (f"{received}From: {ME}\r\nTo: {to}\r\nSubject: big list\r\n\r\nHello all, the plan is ready.\r\n").encode()
    assert len(to) < MAX_FIELD_BYTES
    rec = parse_message(raw, source="x")
    assert len(rec.to) == 300


# ------------------------------------------------------------------ item 5: files that are not mail


def _eml(path: Path, n: int = 0) -> Path:
    m = EmailMessage()
    m["From"] = ME
    m["To"] = "sam@example.com"
    m["Subject"] = f"Plan {n}"
    m["Message-ID"] = f"<f{n}@x.example>"
    m.set_content(f"Hi Sam, plan number {n} is ready.\n")
    path.write_bytes(bytes(m))
    return path


def _errors(specs):
    stats = SourceStats()
    with deadline(20):
        recs = list(read_sources(specs, user_emails=[ME], stats=stats))
    return recs, stats


def test_eml_folder_skips_fifo_devices_and_links_out(tmp_path):
    src = tmp_path / "mail"
    src.mkdir()
    _eml(src / "good.eml", 1)
    os.mkfifo(src / "pipe.eml")
    os.mkfifo(src / "pipe.mbox")
    os.symlink("/dev/zero", src / "zero.eml")
    outside = _eml(tmp_path / "other-user.eml", 2)
    os.symlink(outside, src / "outside.eml")
    os.symlink(src / "good.eml", src / "inside-link.eml")  # inside the source: fine (a duplicate)
    recs, stats = _errors([str(src)])
    assert [r.subject for r in recs] == ["Plan 1"]
    assert stats.errors["not_regular_file"] == 2
    assert stats.errors["symlink_outside_source"] == 2
    assert stats.dropped["duplicate"] == 1


def test_maildir_skips_fifo_and_links_out(tmp_path):
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    _eml(md / "cur" / "1700000000.1.host:2,S", 1)
    os.mkfifo(md / "cur" / "1700000001.2.host:2,S")
    os.symlink("/dev/zero", md / "new" / "1700000002.3.host")
    os.symlink(_eml(tmp_path / "elsewhere.eml", 2), md / "new" / "1700000003.4.host")
    other = tmp_path / "other-user" / "Maildir"
    (other / "cur").mkdir(parents=True)
    _eml(other / "cur" / "1700000005.6.host:2,S", 3)
    sub = md / ".Sent"
    (sub / "new").mkdir(parents=True)
    os.symlink(other / "cur", sub / "cur")  # a Maildir++ folder whose cur/ is another user's
    recs, stats = _errors([str(md)])
    assert [r.subject for r in recs] == ["Plan 1"]
    assert stats.errors["not_regular_file"] == 1 and stats.errors["symlink_outside_source"] == 3


@pytest.mark.parametrize("kind", ["fifo.eml", "fifo.mbox", "fifo", "zero.mbox"])
def test_a_source_that_is_not_a_regular_file_is_one_error(tmp_path, kind):
    p = tmp_path / kind
    if kind.startswith("fifo"):
        os.mkfifo(p)
    else:
        os.symlink("/dev/zero", p)
    with deadline(20), pytest.raises(MailvoiceError) as ei:
        read_sources([str(p)], user_emails=[ME])
    assert "not a regular file or folder" in str(ei.value)


# ------------------------------------------------------------------ item 6: control characters


def test_strip_and_escape_controls():
    s = "a\x1b[31mred\x1b[0m\x1b]52;c;Zm9v\x07b\x9b2Jc\x1b]8;;http://x\x1b\\d\x00e\tf\r\ng\rh\x85"
    assert strip_controls(s) == "aredbcde\tf\ng\nh"
    assert escape_controls("x\x1b]52;c;Zm9v\x07\n\ty\x9b") == "x\\x1b]52;c;Zm9v\\x07\n\ty\\x9b"
    # bidi overrides/isolates go (CVE-2021-42574), right-to-left marks stay
    assert strip_controls("invoice\u202egnp.exe \u2066x\u2069 \u200fשלום") == "invoicegnp.exe x \u200fשלום"
    assert escape_controls("a\u202eb") == "a\\u202eb"


def test_explain_cli_never_prints_escapes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MAILVOICE_NO_PROGRESS": "1"}
    for args in (["explain", str(CORPUS / "ansi_osc.eml")], ["explain", "--json", str(CORPUS / "ansi_osc.eml")]):
        r = subprocess.run([sys.executable, "-m", "mailvoice", *args], capture_output=True, text=True, env=env,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        out = r.stdout + r.stderr
        assert "The red plan" in out
        assert not any(c in out for c in "\x1b\x07\x9b\x00"), repr(out)
        assert "ZWNobyBwd25lZA" not in out  # the OSC 52 clipboard payload went with its sequence


# ------------------------------------------------------------------ items 4-7 through prepare


def _takeout(path: Path, n_sent: int) -> Path:
    box = mailbox.mbox(str(path))
    for i in range(n_sent):
        m = EmailMessage()
        m["From"] = f"Dana <{ME}>"
        m["To"] = "Sam <sam@example.com>"
        m["Subject"] = f"Visit {i}"
        m["Message-ID"] = f"<s{i}@willowcreek-design.example>"
        m["Date"] = f"Mon, {i % 27 + 1:02d} Jan 2026 10:00:00 +0000"
        m["X-Gmail-Labels"] = "Sent,Opened"
        body = f"Hi Sam! Quick thought on planting plan number {i} for the garden beds out back.\n\nCheers,\nDana\n"
        if i == 3:
            body = body.replace("Quick", "\x1b[31mQuick\x1b[0m\x1b]52;c;cHduZWQ=\x07")
        m.set_content(body)
        box.add(m)
    forged = EmailMessage()
    forged["From"] = f"Dana <{ME}>"  # spoofed: Gmail put it in the Inbox, the user never sent it
    forged["To"] = f"Dana <{ME}>"
    forged["Subject"] = "Your account"
    forged["Message-ID"] = "<forged@spam.example>"
    forged["X-Gmail-Labels"] = "Inbox,Unread"
    forged.set_content("FORGEDCANARY claim your prize now at the link below, dear customer.\n")
    box.add(forged)
    box.close()
    with open(path, "ab") as f:  # one message whose Content-Type would stall the parser
        f.write(b"From dana Mon Jan  5 10:00:00 2026\n" + _ct_message(10_000).replace(b"\r\n", b"\n") + b"\n")
    return path


def test_prepare_reports_skips_and_the_sent_rule(tmp_path):
    box = _takeout(tmp_path / "All mail Including Spam and Trash.mbox", 60)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MAILVOICE_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1",
           "COLUMNS": "300"}
    r = subprocess.run([sys.executable, "-m", "mailvoice", "prepare", "--user-id", "dana", "--source", str(box),
                        "--user-email", ME, "--output", str(out), "--min-emails", "10"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "skipped before parsing: header_field_too_large 1" in r.stdout
    assert "Gmail labels present: only mail labelled Sent counts as yours; 1 from your address" in r.stdout
    data = "".join(p.read_text() for p in out.glob("*.json*"))
    assert "FORGEDCANARY" not in data
    assert "Quick thought" in data  # the message with escapes is kept, without them
    assert not has_controls(data.replace("\\u001b", "\x1b").replace("\\u0007", "\x07"))
    assert "cHduZWQ" not in data


# ------------------------------------------------------------------ item 8: secrets in URLs


@pytest.mark.parametrize("url,secret", [
    ("postgresql://mv:pa@Secret99@127.0.0.1:5432/test", "Secret99"),
    ("postgresql://mv:Secret/99@127.0.0.1/test", "Secret"),
    ("postgresql://127.0.0.1/test?user=mv&password=Secret99", "Secret99"),
    ("postgresql://mv:Sec ret99@127.0.0.1/test", "ret99"),
    ("postgresql://mv:Se?cr#et99@127.0.0.1/test", "cr#et99"),
    ("imaps://me:Secret99@imap.example.com/Sent?batch=10", "Secret99"),
])
def test_manifest_source_redaction(url, secret):
    from mailvoice.dataset.prepare import _redact

    shown = _redact(url)
    assert secret not in shown and "Secret" not in shown, shown
    assert "127.0.0.1" in shown or "imap.example.com" in shown


def test_db_password_with_unencoded_at_never_shows_its_tail():
    from mailvoice.sources.emailai_db import open_emailai

    with pytest.raises(MailvoiceError) as ei:
        src = open_emailai("postgresql://mv:pa@Secret99@127.0.0.1:5432/test", user_id="dana", connect_timeout=3)
        src.user_emails()
    msg = str(ei.value)
    assert "Secret99" not in msg and "pa@" not in msg, msg
    assert "percent-encode" in msg


@pytest.mark.parametrize("url", ["postgresql://mv:Secret/99@127.0.0.1/test", "postgresql://mv:Sec ret99@127.0.0.1/test"])
def test_db_password_with_slash_or_space_never_shows(url):
    from mailvoice.sources.emailai_db import open_emailai

    with pytest.raises(MailvoiceError) as ei:
        open_emailai(url, user_id="dana", connect_timeout=3).user_emails()
    assert "99" not in str(ei.value) and "Secret" not in str(ei.value), str(ei.value)


def test_readme_guide_command_keeps_the_db_password_off_argv():
    readme = (ROOT / "README.md").read_text()
    guide = readme[readme.index("### The guide's commands"):]
    first = next(line for line in guide.splitlines() if "prepare-email-data.py" in line)
    assert "--db-url" not in first and "export DATABASE_URL" in guide.split(first)[0]
