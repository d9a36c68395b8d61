"""The IMAP source against a real, private Dovecot (tests/dovecot.py; skipped without it)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import logging
import re
import ssl
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dovecot import dovecot, imap_user, make_message  # noqa: E402,F401 (fixtures)

from mailvoice.errors import MailvoiceError  # noqa: E402
from mailvoice.sources import imap  # noqa: E402
from mailvoice.sources.imap import open_imap  # noqa: E402
from mailvoice.sources.record import MailRecord  # noqa: E402


def _stub_parse(raw: bytes, *, source: str, labels=()) -> MailRecord:
    """Stand-in with parse_message's signature while sources/parse.py is not written."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    mid = (msg["Message-ID"] or "").strip().strip("<>") or "sha256:" + hashlib.sha256(raw).hexdigest()
    body = msg.get_body(("plain",))
    return MailRecord(
        message_id=mid,
        thread_id=mid,
        date=None,
        from_addr=msg["From"].addresses[0].addr_spec.lower() if msg["From"] else "",
        subject=str(msg["Subject"] or ""),
        text=body.get_content() if body else None,
        source=source,
        labels=tuple(labels),
    )


try:
    from mailvoice.sources.parse import parse_message as PARSE
except ImportError:
    PARSE = _stub_parse


def spec(server, user, folder="", *, scheme="imap", port=None, query=""):
    port = port or server.port
    return f"{scheme}://{user}@{server.host}:{port}/{folder}" + (f"?{query}" if query else "")


def read(server, user, pw, folder="", **kw):
    return list(open_imap(spec(server, user, folder), env={"MAILVOICE_IMAP_PASSWORD": pw}, parser=PARSE, **kw))


def subjects(records):
    return [r.subject for r in records]


def fill(server, user, pw, folder, ns, **kw):
    server.append(user, pw, folder, [make_message(n, subject=f"{folder} {n}", **kw) for n in ns])


def test_reads_sent_found_by_special_use(dovecot, imap_user, monkeypatch):
    user, pw = imap_user
    fill(dovecot, user, pw, "Sent", [1, 2, 3])
    fill(dovecot, user, pw, "Archive", [4])
    fill(dovecot, user, pw, "INBOX", [5])
    # No name fallback: the folder must be found by its \Sent flag alone.
    monkeypatch.setattr(imap, "FALLBACK_SENT_NAMES", ())
    recs = read(dovecot, user, pw)
    assert subjects(recs) == ["Sent 1", "Sent 2", "Sent 3"]
    for r in recs:
        assert r.source == "imap://127.0.0.1/Sent"
        assert r.labels == ("Sent",)
        assert user not in r.source and pw not in r.source
        assert r.from_addr == "me@example.com"


def test_special_use_beats_name(dovecot, imap_user, monkeypatch):
    # A folder literally named like a fallback is ignored when another carries \Sent.
    user, pw = imap_user
    conn = dovecot.connect(user, pw)
    assert conn.create('"Sent Items"')[0] == "OK"
    conn.logout()
    fill(dovecot, user, pw, "Sent Items", [1])
    fill(dovecot, user, pw, "Sent", [2])
    assert subjects(read(dovecot, user, pw)) == ["Sent 2"]


def test_named_folder_and_non_ascii_name(dovecot, imap_user):
    user, pw = imap_user
    fill(dovecot, user, pw, "Sent", [1])
    fill(dovecot, user, pw, "Archive", [2, 3])
    recs = read(dovecot, user, pw, "Archive")
    assert subjects(recs) == ["Archive 2", "Archive 3"]
    assert {r.labels for r in recs} == {("Archive",)}
    assert {r.source for r in recs} == {"imap://127.0.0.1/Archive"}

    name, wire = "Éléments envoyés", "&AMk-l&AOk-ments envoy&AOk-s"  # modified UTF-7, RFC 3501 §5.1.3
    conn = dovecot.connect(user, pw)
    assert conn.create(f'"{wire}"')[0] == "OK"
    conn.logout()
    fill(dovecot, user, pw, wire, [9])
    recs = read(dovecot, user, pw, "%C3%89l%C3%A9ments%20envoy%C3%A9s")
    assert [(r.labels, r.source) for r in recs] == [((name,), f"imap://127.0.0.1/{name}")]


def test_incremental_by_uid(dovecot, imap_user, tmp_path):
    user, pw = imap_user
    state = tmp_path / "state" / "imap.json"
    fill(dovecot, user, pw, "Sent", [1, 2])
    assert subjects(read(dovecot, user, pw, state_path=state)) == ["Sent 1", "Sent 2"]
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    entry = json.loads(state.read_text())["folders"][f"{user}@127.0.0.1/Sent"]
    assert entry["last_uid"] == 2 and entry["uidvalidity"] > 0
    assert pw not in state.read_text()

    assert read(dovecot, user, pw, state_path=state) == []  # nothing new
    fill(dovecot, user, pw, "Sent", [3, 4])
    assert subjects(read(dovecot, user, pw, state_path=state)) == ["Sent 3", "Sent 4"]
    assert read(dovecot, user, pw, state_path=state) == []
    # other folders have their own entry in the same file
    fill(dovecot, user, pw, "Archive", [5])
    assert subjects(read(dovecot, user, pw, "Archive", state_path=state)) == ["Archive 5"]
    folders = json.loads(state.read_text())["folders"]
    assert folders[f"{user}@127.0.0.1/Sent"]["last_uid"] == 4
    assert folders[f"{user}@127.0.0.1/Archive"]["last_uid"] == 1


def test_batches_and_stopping_early_resumes(dovecot, imap_user, tmp_path):
    user, pw = imap_user
    state = tmp_path / "s.json"
    fill(dovecot, user, pw, "Sent", range(1, 8))
    src = open_imap(spec(dovecot, user, "Sent"), env={"MAILVOICE_IMAP_PASSWORD": pw}, parser=PARSE,
                    state_path=state, batch_size=3)
    it = iter(src)
    got = [next(it).subject for _ in range(4)]  # batch 1 done, batch 2 started
    it.close()
    assert got == ["Sent 1", "Sent 2", "Sent 3", "Sent 4"]
    assert json.loads(state.read_text())["folders"][f"{user}@127.0.0.1/Sent"]["last_uid"] == 3
    # the half-read batch is read again (downstream dedupes by Message-ID)
    assert subjects(read(dovecot, user, pw, "Sent", state_path=state, batch_size=3)) == [
        f"Sent {n}" for n in range(4, 8)
    ]


def test_uid_windows_and_size_chunks(dovecot, imap_user, tmp_path, monkeypatch):
    # Small windows stand in for a folder of 100,000s: every UID is found once, in order.
    monkeypatch.setattr(imap, "UID_WINDOW", 2)
    monkeypatch.setattr(imap, "SIZE_CHUNK", 3)
    user, pw = imap_user
    state = tmp_path / "s.json"
    fill(dovecot, user, pw, "Sent", range(1, 8))
    assert subjects(read(dovecot, user, pw, "Sent", state_path=state)) == [f"Sent {n}" for n in range(1, 8)]
    fill(dovecot, user, pw, "Sent", [8, 9, 10])
    assert subjects(read(dovecot, user, pw, "Sent", state_path=state)) == ["Sent 8", "Sent 9", "Sent 10"]


def test_uidvalidity_change_resets(dovecot, imap_user, tmp_path):
    user, pw = imap_user
    state = tmp_path / "s.json"
    conn = dovecot.connect(user, pw)
    assert conn.create("Outbox")[0] == "OK"
    conn.logout()
    fill(dovecot, user, pw, "Outbox", [1, 2, 3])
    assert len(read(dovecot, user, pw, "Outbox", state_path=state)) == 3
    key = f"{user}@127.0.0.1/Outbox"
    before = json.loads(state.read_text())["folders"][key]

    # Recreating the folder gives it a new UIDVALIDITY; its UIDs start again at 1.
    conn = dovecot.connect(user, pw)
    assert conn.delete("Outbox")[0] == "OK"
    assert conn.create("Outbox")[0] == "OK"
    conn.logout()
    fill(dovecot, user, pw, "Outbox", [7])
    recs = read(dovecot, user, pw, "Outbox", state_path=state)
    assert subjects(recs) == ["Outbox 7"]  # UID 1 <= old last_uid 3, yet read
    after = json.loads(state.read_text())["folders"][key]
    assert after["uidvalidity"] != before["uidvalidity"]
    assert after["last_uid"] == 1


def test_forged_uidvalidity_in_state_resets(dovecot, imap_user, tmp_path):
    user, pw = imap_user
    fill(dovecot, user, pw, "Sent", [1, 2])
    state = tmp_path / "s.json"
    read(dovecot, user, pw, state_path=state)
    data = json.loads(state.read_text())
    data["folders"][f"{user}@127.0.0.1/Sent"]["uidvalidity"] = 1
    state.write_text(json.dumps(data))
    assert subjects(read(dovecot, user, pw, state_path=state)) == ["Sent 1", "Sent 2"]


def test_wrong_password_one_line_no_secret(dovecot, imap_user, caplog):
    user, _ = imap_user
    bad = "Wr0ng-P4ss-xyzzy"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MailvoiceError) as e:
        read(dovecot, user, bad)
    msg = str(e.value)
    assert msg.startswith(f"IMAP login failed for {user}@127.0.0.1")
    assert "\n" not in msg and bad not in msg
    assert bad not in caplog.text
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_password_from_file(dovecot, imap_user, tmp_path):
    user, pw = imap_user
    fill(dovecot, user, pw, "Sent", [1])
    f = tmp_path / "pw"
    f.write_text(pw + "\n")
    recs = list(open_imap(spec(dovecot, user), env={"MAILVOICE_IMAP_PASSWORD_FILE": str(f)}, parser=PARSE))
    assert subjects(recs) == ["Sent 1"]


def test_non_ascii_password(dovecot):
    user, pw = dovecot.new_user("pässwörd-ünï")
    recs = list(open_imap(spec(dovecot, user), env={"MAILVOICE_IMAP_PASSWORD": pw}, parser=PARSE))
    assert recs == []


def test_missing_folder_lists_available(dovecot, imap_user):
    user, pw = imap_user
    with pytest.raises(MailvoiceError) as e:
        read(dovecot, user, pw, "Nope")
    msg = str(e.value)
    assert msg.startswith("IMAP folder 'Nope' not found on 127.0.0.1")
    assert re.search(r"available: .*Archive.*INBOX.*Sent", msg), msg
    assert "\n" not in msg
    with pytest.raises(MailvoiceError, match="did you mean 'Archive'"):
        read(dovecot, user, pw, "archive")


def test_fetch_leaves_messages_unseen_and_logs_no_mail(dovecot, imap_user, caplog):
    user, pw = imap_user
    fill(dovecot, user, pw, "Sent", [1, 2])
    caplog.set_level(logging.DEBUG)  # imapclient logs the protocol at DEBUG
    assert len(read(dovecot, user, pw)) == 2
    assert "this is message number" not in caplog.text and "Sent 1" not in caplog.text
    conn = dovecot.connect(user, pw)
    conn.select("Sent", readonly=True)
    typ, data = conn.fetch("1:*", "(FLAGS)")
    conn.logout()
    assert typ == "OK" and len(data) == 2
    assert all(b"\\Seen" not in line for line in data), data


def test_iter_raw_and_too_large(dovecot, imap_user):
    user, pw = imap_user
    fill(dovecot, user, pw, "Sent", [1])
    dovecot.append(user, pw, "Sent", [make_message(2, body="x" * 50_000)])
    src = open_imap(spec(dovecot, user), env={"MAILVOICE_IMAP_PASSWORD": pw}, max_message_bytes=10_000)
    raws = list(src.iter_raw())
    assert [r.error for r in raws] == [None, "too_large"]
    assert b"Subject: Sent 1" in raws[0].data and raws[0].labels == ("Sent",)
    assert raws[1].data == b""
    assert src.name == "imap://127.0.0.1/Sent" and src.folder == "Sent"


def test_host_unreachable(dovecot):
    from dovecot import free_port

    port = free_port()  # nothing listens there
    with pytest.raises(MailvoiceError, match=rf"IMAP server 127\.0\.0\.1:{port} unreachable"):
        list(open_imap(f"imap://u@127.0.0.1:{port}/Sent", env={"MAILVOICE_IMAP_PASSWORD": "p"}, timeout=5))


def test_host_unresolvable():
    with pytest.raises(MailvoiceError, match=r"(cannot resolve IMAP host|unreachable)"):
        list(open_imap("imap://u@no-such-host.invalid/Sent", env={"MAILVOICE_IMAP_PASSWORD": "p"}, timeout=5))


# --------------------------------------------------------------------------- TLS


@pytest.fixture
def tls(dovecot):
    if not dovecot.cafile:
        pytest.skip("openssl is not installed, so the test Dovecot has no certificate")
    return ssl.create_default_context(cafile=str(dovecot.cafile))


def test_imaps(dovecot, imap_user, tls):
    user, pw = imap_user
    fill(dovecot, user, pw, "Sent", [1])
    s = spec(dovecot, user, scheme="imaps", port=dovecot.imaps_port)
    recs = list(open_imap(s, env={"MAILVOICE_IMAP_PASSWORD": pw}, ssl_context=tls, parser=PARSE))
    assert subjects(recs) == ["Sent 1"]
    assert recs[0].source == "imap://127.0.0.1/Sent"


def test_starttls(dovecot, imap_user, tls):
    user, pw = imap_user
    fill(dovecot, user, pw, "Sent", [1])
    s = spec(dovecot, user, query="starttls=1")
    recs = list(open_imap(s, env={"MAILVOICE_IMAP_PASSWORD": pw}, ssl_context=tls, parser=PARSE))
    assert subjects(recs) == ["Sent 1"]


def test_untrusted_certificate(dovecot, imap_user, tls):
    user, pw = imap_user
    s = spec(dovecot, user, scheme="imaps", port=dovecot.imaps_port)
    with pytest.raises(MailvoiceError, match="not trusted"):
        list(open_imap(s, env={"MAILVOICE_IMAP_PASSWORD": pw}))  # system CAs only


# --------------------------------------------------------------------------- XOAUTH2


def test_xoauth2_login(dovecot, imap_user):
    # Dovecot's oauth2 passdb validates the token against the fixture's local introspection
    # endpoint, so this is the real AUTHENTICATE XOAUTH2 exchange.
    user, pw = imap_user
    fill(dovecot, user, pw, "Sent", [1, 2])
    token = "ya29.test-" + user
    dovecot.oauth_tokens[token] = user
    recs = list(open_imap(spec(dovecot, user), env={"MAILVOICE_IMAP_OAUTH_TOKEN": token}, parser=PARSE))
    assert subjects(recs) == ["Sent 1", "Sent 2"]
    assert "method=XOAUTH2" in dovecot.log_path.read_text()


def test_xoauth2_bad_token(dovecot, imap_user, caplog):
    user, _ = imap_user
    token = "ya29.expired-token-0xdeadbeef"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MailvoiceError) as e:
        list(open_imap(spec(dovecot, user), env={"MAILVOICE_IMAP_OAUTH_TOKEN": token}, parser=PARSE))
    msg = str(e.value)
    assert msg.startswith(f"IMAP XOAUTH2 login failed for {user}@127.0.0.1")
    assert token not in msg and "deadbeef" not in msg and "\n" not in msg
    assert token not in caplog.text


def test_through_the_sources_dispatcher(dovecot, imap_user, monkeypatch):
    from mailvoice.sources import SourceStats, read_sources

    user, pw = imap_user
    fill(dovecot, user, pw, "Archive", [1, 2])
    dovecot.append(user, pw, "Archive", [make_message(3, sender="someone-else@example.net")])
    monkeypatch.setenv("MAILVOICE_IMAP_PASSWORD", pw)
    stats = SourceStats()
    specs = [spec(dovecot, user, "Archive"), spec(dovecot, user, "Archive")]  # 2nd: duplicates
    recs = list(read_sources(specs, user_emails=["me@example.com"], stats=stats))
    assert subjects(recs) == ["Archive 1", "Archive 2"]
    assert {r.source for r in recs} == {"imap://127.0.0.1/Archive"}
    assert {r.labels for r in recs} == {("Archive",)}
    assert stats.seen == 6 and stats.kept == 2
    assert stats.dropped["not_from_user"] == 2 and stats.dropped["duplicate"] == 2
