"""Readers (mbox, Maildir, .eml, PST), open_source, filters, dedupe, JSONL files."""

from __future__ import annotations

import mailbox
import os
import shutil
import stat
import sys
import textwrap
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailvoice import sources
from mailvoice.errors import MailvoiceError, NotAvailableYet
from mailvoice.sources import (
    MailRecord,
    SourceStats,
    open_source,
    read_records,
    read_sources,
    write_records,
)
from mailvoice.sources.eml import EmlSource
from mailvoice.sources.maildir import MaildirSource
from mailvoice.sources.mbox import MboxSource, iter_mbox

ME = "me@example.com"


def make_msg(
    n: int | str = 1, *, frm: str = f"Me <{ME}>", body: str = "Hello,\nthis is me.\n", **headers: str
) -> EmailMessage:
    m = EmailMessage()
    m["From"] = frm
    m["To"] = "friend@example.org"
    m["Subject"] = f"message {n}"
    m["Date"] = "Tue, 02 Jan 2024 10:00:00 +0000"
    m["Message-ID"] = f"<msg-{n}@example.com>"
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    return m


def write_mboxrd(path: Path, msgs, *, crlf: bool = False, blank: bool = True) -> None:
    """mboxrd writer: every ``>*From `` line at a line start gets one more ``>``."""
    nl = b"\r\n" if crlf else b"\n"
    with open(path, "wb") as f:
        for m in msgs:
            raw = m if isinstance(m, bytes) else m.as_bytes()
            f.write(b"From sender@example.com Tue Jan  2 10:00:00 2024" + nl)
            for line in raw.splitlines(keepends=True):
                if line.lstrip(b">").startswith(b"From "):
                    line = b">" + line
                f.write(line.rstrip(b"\r\n") + nl)
            if blank:
                f.write(nl)


# ---------------------------------------------------------------- mbox


def test_mbox_from_escaping_roundtrip(tmp_path):
    body = "First line\nFrom the start of a line\n>From quoted once\n>>From twice\nend\n"
    p = tmp_path / "Sent.mbox"
    write_mboxrd(p, [make_msg(1, body=body), make_msg(2)])
    recs = list(read_sources([str(p)], user_emails=[ME]))
    assert [r.message_id for r in recs] == ["msg-1@example.com", "msg-2@example.com"]
    assert recs[0].text == body
    assert recs[0].source == f"mbox:{p}"


def test_mbox_written_by_stdlib(tmp_path):
    p = tmp_path / "std.mbox"
    mb = mailbox.mbox(p)
    for i in range(5):
        mb.add(make_msg(i, body=f"From me, message {i}\n"))
    mb.flush()
    mb.close()
    recs = list(read_sources([f"mbox:{p}"], user_emails=[ME]))
    assert len(recs) == 5
    assert recs[3].text == "From me, message 3\n"  # mboxo ">From " unescaped


def test_mbox_crlf_and_missing_blank_lines(tmp_path):
    p = tmp_path / "a.mbox"
    write_mboxrd(p, [make_msg(1), make_msg(2), make_msg(3)], crlf=True)
    assert [r.text for r in read_sources([str(p)], user_emails=[ME])] == ["Hello,\nthis is me.\n"] * 3
    p2 = tmp_path / "b.mbox"
    write_mboxrd(p2, [make_msg(1), make_msg(2)], blank=False)
    assert len(list(iter_mbox(p2))) == 2


def test_mbox_unescaped_from_in_body_without_postmark_is_kept(tmp_path):
    p = tmp_path / "c.mbox"
    raw = make_msg(1).as_bytes() + b"From here on it is body text\n"  # not a postmark, no blank
    p.write_bytes(b"From x@y Tue Jan  2 10:00:00 2024\n" + raw + b"\n")
    (data,) = list(iter_mbox(p))
    assert data.endswith(b"From here on it is body text\n")


def test_mbox_block_boundaries_do_not_matter(tmp_path):
    p = tmp_path / "mixed.mbox"
    body = "From the top\n>From quoted\n\nFrom after a blank line but no postmark?\nx" * 3 + "\n"
    write_mboxrd(p, [make_msg(1, body=body), make_msg(2), make_msg(3, body="y" * 3000 + "\n")])
    with open(p, "ab") as f:  # a writer that left out the blank line, and no final newline
        f.write(b"From a@b Tue Jan  2 10:00:00 2024\n" + make_msg(4).as_bytes().rstrip(b"\n"))
    expected = list(iter_mbox(p))
    assert len(expected) == 4 and expected[3].endswith(b"this is me.")
    for size in (1, 7, 64, 100, 999, 4096):
        assert list(iter_mbox(p, chunk_size=size)) == expected, size
    recs = list(read_sources([str(p)], user_emails=[ME]))
    assert recs[0].text == body


def test_mbox_oversized_message_skipped(tmp_path):
    p = tmp_path / "big.mbox"
    write_mboxrd(p, [make_msg(1, body="x" * 5000 + "\n"), make_msg(2)])
    out = list(iter_mbox(p, max_bytes=2000))
    assert out[0] is None and out[1] is not None


def test_takeout_labels(tmp_path):
    p = tmp_path / "All mail Including Spam and Trash.mbox"
    write_mboxrd(
        p,
        [
            make_msg(1, X_Gmail_Labels='Inbox,Sent,"Work, misc"'),
            make_msg(2, frm="Alias <me.alias@example.net>", X_Gmail_Labels="Sent,Important"),
            make_msg(3, frm="Other <other@example.org>", X_Gmail_Labels="Inbox,Opened"),
            make_msg(4, X_Gmail_Labels="Chat,Sent"),
            make_msg(5, X_Gmail_Labels="=?UTF-8?Q?Caf=C3=A9?=,Sent", X_GM_THRID="1777"),
        ],
    )
    stats = SourceStats()
    recs = list(read_sources([str(p)], user_emails=[ME], stats=stats))
    assert [r.message_id for r in recs] == ["msg-1@example.com", "msg-2@example.com", "msg-5@example.com"]
    assert recs[0].labels == ("Inbox", "Sent", "Work, misc")
    assert recs[2].labels == ("Café", "Sent")
    assert recs[2].thread_id == "gmail:1777"
    assert stats.dropped == {"not_from_user": 1, "chat": 1}


# ---------------------------------------------------------------- filters: every reason


def _report() -> bytes:
    return (
        f"From: {ME}\nTo: x@example.org\nSubject: Delivery Status Notification\n"
        "Message-ID: <dsn@example.com>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
        "Final-Recipient: rfc822; x@example.org\nAction: failed\n--B--\n"
    ).encode()


def _invite() -> EmailMessage:
    m = make_msg("cal", body="Join me\n")
    m.add_alternative(
        "BEGIN:VCALENDAR\nMETHOD:REQUEST\nEND:VCALENDAR\n", subtype="calendar", params={"method": "REQUEST"}
    )
    return m


def _ics_attached() -> EmailMessage:
    m = make_msg("ics", body="Here is the schedule as a file.\n")
    m.add_attachment(b"BEGIN:VCALENDAR\nEND:VCALENDAR\n", maintype="text", subtype="calendar", filename="plan.ics")
    return m


def test_every_drop_reason_counted(tmp_path):
    d = tmp_path / "eml"
    (d / "sub" / "deeper").mkdir(parents=True)
    msgs = {
        "keep1": make_msg("k1"),
        "keep_ics": _ics_attached(),
        "not_me": make_msg("n", frm="Someone <someone@example.org>"),
        "auto": make_msg("a", Auto_Submitted="auto-replied"),
        "auto_no": make_msg("ano", Auto_Submitted="no"),
        "prec": make_msg("p", Precedence="bulk"),
        "listid": make_msg("l", List_Id="<news.example.com>"),
        "unsub": make_msg("u", List_Unsubscribe="<mailto:u@example.com>"),
        "cal": _invite(),
        "dsn": _report(),
        "daemon": make_msg("md", frm="MAILER-DAEMON@example.com", X_Gmail_Labels="Sent"),
        "chat": make_msg("c", X_Gmail_Labels="Chat"),
        "nobody": make_msg("nb", body="   \n"),
    }
    for i, (name, m) in enumerate(msgs.items()):
        sub = [d, d / "sub", d / "sub" / "deeper"][i % 3]
        (sub / f"{name}.eml").write_bytes(m if isinstance(m, bytes) else m.as_bytes())
    (d / "bad.eml").write_bytes(b"")
    (d / "dup.eml").write_bytes(make_msg("k1").as_bytes())
    (d / "notes.txt").write_text("not mail, ignored")
    stats = SourceStats()
    recs = list(read_sources([str(d)], user_emails=["ME@Example.com"], stats=stats))
    assert sorted(r.message_id for r in recs) == sorted(
        ["msg-k1@example.com", "msg-ics@example.com", "msg-ano@example.com"]
    )
    assert stats.dropped == {
        "not_from_user": 1,
        "auto_submitted": 1,
        "bulk": 3,
        "calendar": 1,
        "delivery_report": 2,
        "chat": 1,
        "no_body": 1,
        "malformed": 1,
        "duplicate": 1,
    }
    assert stats.errors["empty"] == 1
    assert stats.seen == stats.kept + sum(stats.dropped.values()) == 15
    assert set(stats.dropped) <= set(sources.DROP_REASONS)
    labels = {r.message_id: r.labels for r in recs}
    assert labels["msg-ics@example.com"] == ("sub",)


def test_no_user_emails_is_an_error(tmp_path):
    with pytest.raises(MailvoiceError):
        read_sources([str(tmp_path)], user_emails=[])


# ---------------------------------------------------------------- Maildir / eml / dedupe


def test_maildir_cur_new_and_subfolder(tmp_path):
    md = mailbox.Maildir(tmp_path / "Mail", create=True)
    md.add(mailbox.MaildirMessage(make_msg(1)))  # new/
    m2 = mailbox.MaildirMessage(make_msg(2))
    m2.set_subdir("cur")
    m2.set_flags("S")
    md.add(m2)
    sent = md.add_folder("Sent")
    sent.add(make_msg(3))
    (tmp_path / "Mail" / "tmp" / "partial").write_bytes(b"half a message")  # tmp/ is ignored
    src = open_source(str(tmp_path / "Mail"))
    assert isinstance(src, MaildirSource)
    recs = list(read_sources([src], user_emails=[ME]))
    assert sorted(r.message_id for r in recs) == [f"msg-{i}@example.com" for i in (1, 2, 3)]
    assert [r.labels for r in recs if r.message_id == "msg-3@example.com"] == [("Sent",)]


def test_dedupe_across_sources(tmp_path):
    p = tmp_path / "Sent.mbox"
    write_mboxrd(p, [make_msg(i) for i in range(4)])
    d = tmp_path / "emls"
    d.mkdir()
    for i in range(2, 7):
        (d / f"{i}.eml").write_bytes(make_msg(i).as_bytes())
    stats = SourceStats()
    recs = list(read_sources([f"mbox:{p}", f"eml:{d}"], user_emails=[ME], stats=stats))
    assert [r.message_id for r in recs] == [f"msg-{i}@example.com" for i in range(7)]
    assert [r.source.split(":")[0] for r in recs] == ["mbox"] * 4 + ["eml"] * 3
    assert stats.dropped == {"duplicate": 2}
    assert (stats.seen, stats.kept) == (9, 7)


def test_single_eml_file_and_detection(tmp_path):
    f = tmp_path / "one.eml"
    f.write_bytes(make_msg(1).as_bytes())
    assert isinstance(open_source(str(f)), EmlSource)
    plain = tmp_path / "message"  # no suffix: sniffed as a message by its header line
    plain.write_bytes(make_msg(1).as_bytes())
    assert isinstance(open_source(str(plain)), EmlSource)
    mb = tmp_path / "archive"  # no suffix, starts with a postmark
    write_mboxrd(mb, [make_msg(1)])
    assert isinstance(open_source(str(mb)), MboxSource)
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"\x89PNG\r\n")
    with pytest.raises(MailvoiceError, match="cannot tell"):
        open_source(str(odd))
    assert len(list(read_sources([f"eml:{f}"], user_emails=[ME]))) == 1


def test_mbox_inside_eml_folder(tmp_path):
    d = tmp_path / "Takeout" / "Mail"
    d.mkdir(parents=True)
    write_mboxrd(d / "Sent.mbox", [make_msg(1), make_msg(2)])
    (d / "x.eml").write_bytes(make_msg(3).as_bytes())
    assert len(list(read_sources([str(tmp_path / "Takeout")], user_emails=[ME]))) == 3


# ---------------------------------------------------------------- errors


def test_missing_path_raises_one_line_error(tmp_path):
    for spec in (str(tmp_path / "nope.mbox"), f"mbox:{tmp_path}/nope", f"maildir:{tmp_path}/x"):
        with pytest.raises(MailvoiceError) as ei:
            read_sources([spec], user_emails=[ME])
        assert "nope" in str(ei.value) or "x" in str(ei.value)
        assert "\n" not in str(ei.value)


def test_wrong_kind_raises(tmp_path):
    with pytest.raises(MailvoiceError, match="not an mbox"):
        list(read_sources([f"mbox:{tmp_path}"], user_emails=[ME]))
    with pytest.raises(MailvoiceError, match="not a Maildir"):
        list(read_sources([f"maildir:{tmp_path}"], user_emails=[ME]))


def test_unreadable_file_raises(tmp_path, monkeypatch):
    p = tmp_path / "locked.mbox"
    write_mboxrd(p, [make_msg(1)])
    if os.geteuid() != 0:
        p.chmod(0)
    else:  # root reads anything: make open() fail the way a chmod 000 file would
        real_open = os.open  # the readers open message files with os.open (non-blocking, see open_regular)

        def fake_open(file, *a, **kw):
            if str(file) == str(p):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *a, **kw)

        monkeypatch.setattr(os, "open", fake_open)
    with pytest.raises(MailvoiceError) as ei:
        list(read_sources([str(p)], user_emails=[ME]))
    assert str(p) in str(ei.value) and "Permission denied" in str(ei.value)


@pytest.mark.parametrize(
    "spec",
    ["imaps://me:secret@imap.example.com/Sent", "imap://localhost/INBOX", "emailai:work", "postgresql://u:pw@db/mail"],
)
def test_remote_schemes_not_available_yet(spec, monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **kw):  # make the test independent of the other modules' progress
        if name in ("mailvoice.sources.imap", "mailvoice.sources.emailai_db"):
            err = ModuleNotFoundError(f"No module named {name!r}")
            err.name = name
            raise err
        return real(name, *a, **kw)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(NotAvailableYet) as ei:
        open_source(spec)
    assert "secret" not in str(ei.value) and "pw" not in str(ei.value)


def test_remote_schemes_dispatch_to_their_module(monkeypatch):
    import types

    calls = []

    class Fake(sources.Source):
        name = "imap://host/Sent"

        def iter_raw(self):
            yield sources.RawMail(make_msg("r").as_bytes(), ("Sent",))

    mod = types.ModuleType("mailvoice.sources.imap")
    mod.open_source = lambda spec: calls.append(spec) or Fake()
    monkeypatch.setitem(sys.modules, "mailvoice.sources.imap", mod)
    recs = list(read_sources(["imaps://me@host/Sent"], user_emails=[ME]))
    assert calls == ["imaps://me@host/Sent"]
    assert [(r.message_id, r.source, r.labels) for r in recs] == [("msg-r@example.com", "imap://host/Sent", ("Sent",))]


def test_unknown_url_scheme():
    with pytest.raises(MailvoiceError, match="unknown source kind"):
        open_source("pop3://host/")


# ---------------------------------------------------------------- PST


def test_pst_without_readpst(tmp_path, monkeypatch):
    f = tmp_path / "outlook.pst"
    f.write_bytes(b"!BDN" + b"\0" * 100)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(MailvoiceError, match="apt-get install pst-utils"):
        open_source(str(f))


def test_pst_via_fake_readpst(tmp_path, monkeypatch):
    """The readpst code path with a stand-in that writes what ``readpst -e -o DIR`` writes."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    src = tmp_path / "src.eml"
    src.write_bytes(make_msg(1).as_bytes())
    fake = bindir / "readpst"
    fake.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import os, shutil, stat, sys
        args = sys.argv[1:]
        out = args[args.index("-o") + 1]
        assert "-e" in args and args[-1].endswith(".pst")
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
        os.makedirs(os.path.join(out, "Outlook", "Sent Items"))
        shutil.copy({str(src)!r}, os.path.join(out, "Outlook", "Sent Items", "1.eml"))
        open(os.path.join({str(tmp_path)!r}, "outdir"), "w").write(out)
    """)
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    pst = tmp_path / "mail.pst"
    pst.write_bytes(b"!BDN")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    recs = list(read_sources([str(pst)], user_emails=[ME]))
    assert [r.message_id for r in recs] == ["msg-1@example.com"]
    assert recs[0].labels == ("Outlook/Sent Items",)
    assert recs[0].source == f"pst:{pst}"
    assert not Path((tmp_path / "outdir").read_text()).exists()  # temp dir removed


def test_pst_readpst_failure(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "readpst"
    fake.write_text("#!/bin/sh\necho 'Subject: private stuff' >&2\nexit 3\n")
    fake.chmod(0o755)
    pst = tmp_path / "broken.pst"
    pst.write_bytes(b"junk")
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(MailvoiceError) as ei:
        list(read_sources([str(pst)], user_emails=[ME]))
    assert "exit 3" in str(ei.value) and "private" not in str(ei.value)


@pytest.mark.skipif(shutil.which("readpst") is None, reason="pst-utils not installed")
def test_real_readpst_rejects_a_broken_pst(tmp_path):
    pst = tmp_path / "broken.pst"
    pst.write_bytes(b"!BDN" + bytes(range(256)) * 20)
    with pytest.raises(MailvoiceError, match="readpst could not read"):
        list(read_sources([str(pst)], user_emails=[ME]))


# ---------------------------------------------------------------- JSONL


def test_write_and_read_records(tmp_path):
    recs = [
        MailRecord(
            message_id=f"id{i}", thread_id="t", date=None, from_addr=ME, to=("a@b",), text="héllo\n", labels=("Sent",)
        )
        for i in range(3)
    ]
    path = tmp_path / "user" / "data" / "records.jsonl"
    assert write_records(iter(recs), path) == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(read_records(path)) == recs
    assert [p.name for p in path.parent.iterdir()] == ["records.jsonl"]  # no temp left


def test_write_records_failure_keeps_old_file(tmp_path):
    path = tmp_path / "records.jsonl"
    write_records([MailRecord(message_id="old", thread_id="old", date=None, from_addr=ME)], path)

    def boom():
        yield MailRecord(message_id="new", thread_id="new", date=None, from_addr=ME)
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        write_records(boom(), path)
    assert [r.message_id for r in read_records(path)] == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["records.jsonl"]


def test_read_records_errors(tmp_path):
    with pytest.raises(MailvoiceError, match="cannot read"):
        list(read_records(tmp_path / "missing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"message_id": "a", "thread_id": "a", "date": null, "from_addr": "x"}\nsecret text that is not json\n'
    )
    with pytest.raises(MailvoiceError) as ei:
        list(read_records(bad))
    assert "line 2" in str(ei.value) and "secret" not in str(ei.value)


def test_records_roundtrip_from_ingest(tmp_path):
    p = tmp_path / "Sent.mbox"
    write_mboxrd(p, [make_msg(i) for i in range(3)])
    out = tmp_path / "records.jsonl"
    assert write_records(read_sources([str(p)], user_emails=[ME]), out) == 3
    assert [r.subject for r in read_records(out)] == ["message 0", "message 1", "message 2"]
