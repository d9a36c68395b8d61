"""IMAP source pieces that need no server: spec, credentials, XOAUTH2, sent-folder choice, state."""

from __future__ import annotations

import base64
import json
import stat

import pytest

from mailvoice.errors import MailvoiceError
from mailvoice.sources.imap import (
    Folder,
    batches,
    load_state,
    open_imap,
    parse_spec,
    pick_sent_folder,
    resolve_credentials,
    save_state,
    xoauth2_string,
)

# --------------------------------------------------------------------------- spec


def test_spec_basic_defaults():
    s = parse_spec("imap://alice@mail.example.com/Sent")
    assert (s.scheme, s.user, s.host, s.port, s.folder, s.starttls) == (
        "imap", "alice", "mail.example.com", 143, "Sent", False,
    )
    s = parse_spec("imaps://alice@Mail.Example.com")
    assert (s.port, s.folder, s.host) == (993, None, "mail.example.com")
    assert parse_spec("imaps://alice@h/").folder is None


def test_spec_user_with_at_and_folder_with_slash_and_spaces():
    s = parse_spec("imaps://me@gmail.com@imap.gmail.com:993/[Gmail]/Sent%20Mail")
    assert (s.user, s.host, s.port, s.folder) == ("me@gmail.com", "imap.gmail.com", 993, "[Gmail]/Sent Mail")
    s = parse_spec("imap://me%40corp.example@outlook.office365.com/Sent Items?starttls=1")
    assert (s.user, s.folder, s.starttls) == ("me@corp.example", "Sent Items", True)
    assert parse_spec("imap://u@h/Envoy%C3%A9s").folder == "Envoyés"


def test_spec_options():
    s = parse_spec("imap://u@h:1143/X?starttls=1&auth=xoauth2&batch=7")
    assert (s.port, s.starttls, s.auth, s.batch) == (1143, True, "xoauth2", 7)


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("pop3://u@h/", "imap:// or imaps://"),
        ("imap://h/Sent", "needs a user"),
        ("imap://u@/Sent", "needs a host"),
        ("imap://u@h:notaport/", "bad port"),
        ("imaps://u@h/?starttls=1", "already TLS"),
        ("imap://u@h/?starttls=maybe", "starttls"),
        ("imap://u@h/?auth=kerberos", "auth must be"),
        ("imap://u@h/?batch=0", "batch"),
        ("imap://u@h/?colour=blue", "unknown IMAP spec option"),
    ],
)
def test_spec_errors(spec, needle):
    with pytest.raises(MailvoiceError) as e:
        parse_spec(spec)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_password_in_spec_is_refused_and_not_echoed():
    with pytest.raises(MailvoiceError) as e:
        parse_spec("imap://alice:hunter2secret@h/Sent")
    assert "hunter2secret" not in str(e.value)
    assert "MAILVOICE_IMAP_PASSWORD" in str(e.value)


# --------------------------------------------------------------------------- credentials


def test_credentials_from_env_and_file(tmp_path):
    spec = parse_spec("imap://u@h/")
    c = resolve_credentials(spec, env={"MAILVOICE_IMAP_PASSWORD": "s3cret"})
    assert (c.kind, c.secret) == ("password", "s3cret")
    assert "s3cret" not in repr(c)

    f = tmp_path / "pw"
    f.write_text("from file\n")
    c = resolve_credentials(spec, env={"MAILVOICE_IMAP_PASSWORD_FILE": str(f)})
    assert c.secret == "from file"

    t = tmp_path / "tok"
    t.write_text("ya29.token\n")
    c = resolve_credentials(spec, env={"MAILVOICE_IMAP_OAUTH_TOKEN_FILE": str(t)})
    assert (c.kind, c.secret) == ("xoauth2", "ya29.token")
    # both configured: the token wins unless the spec says auth=password
    env = {"MAILVOICE_IMAP_OAUTH_TOKEN": "tok", "MAILVOICE_IMAP_PASSWORD": "pw"}
    assert resolve_credentials(spec, env=env).kind == "xoauth2"
    assert resolve_credentials(parse_spec("imap://u@h/?auth=password"), env=env).kind == "password"


@pytest.mark.parametrize(
    "env, needle",
    [
        ({}, "no IMAP password for u@h"),
        ({"MAILVOICE_IMAP_PASSWORD": "a", "MAILVOICE_IMAP_PASSWORD_FILE": "/x"}, "only one of"),
        ({"MAILVOICE_IMAP_PASSWORD_FILE": "/nonexistent/pw"}, "cannot read IMAP password file"),
    ],
)
def test_credential_errors(env, needle):
    with pytest.raises(MailvoiceError) as e:
        resolve_credentials(parse_spec("imap://u@h/"), env=env)
    assert needle in str(e.value)


def test_xoauth2_requested_without_token():
    with pytest.raises(MailvoiceError, match="needs an OAuth access token"):
        resolve_credentials(parse_spec("imap://u@h/?auth=xoauth2"), env={"MAILVOICE_IMAP_PASSWORD": "p"})


def test_empty_password_file(tmp_path):
    f = tmp_path / "pw"
    f.write_text("\n")
    with pytest.raises(MailvoiceError, match="is empty"):
        resolve_credentials(parse_spec("imap://u@h/"), env={"MAILVOICE_IMAP_PASSWORD_FILE": str(f)})


def test_open_imap_checks_eagerly_but_connects_lazily():
    # Credentials are checked at once ...
    with pytest.raises(MailvoiceError, match="no IMAP password"):
        open_imap("imap://u@127.0.0.1:1/Sent", env={})
    # ... but nothing connects until the source is iterated.
    src = open_imap("imap://u@127.0.0.1:1/Sent", env={"MAILVOICE_IMAP_PASSWORD": "Zq9-secret"})
    assert src.name == "imap://127.0.0.1/Sent"
    assert "Zq9-secret" not in repr(src) + repr(vars(src))
    with pytest.raises(MailvoiceError, match=r"IMAP server 127\.0\.0\.1:1 unreachable"):
        list(src)


# --------------------------------------------------------------------------- XOAUTH2


def test_xoauth2_string_matches_googles_documented_example():
    # https://developers.google.com/gmail/imap/xoauth2-protocol#the_sasl_xoauth2_mechanism
    raw = xoauth2_string("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    assert raw == (
        b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
    )
    assert base64.b64encode(raw) == (
        b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
        b"YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )


def test_xoauth2_rejects_control_chars():
    with pytest.raises(MailvoiceError):
        xoauth2_string("u", "tok\x01en")


# --------------------------------------------------------------------------- LIST

# What IMAPClient.list_folders returns for Gmail (its documented shape: flags as bytes, the name
# decoded from modified UTF-7); the wire parsing itself is tested against Dovecot.
GMAIL_LIST = [
    ((b"\\HasNoChildren",), b"/", "INBOX"),
    ((b"\\HasChildren", b"\\Noselect"), b"/", "[Gmail]"),
    ((b"\\All", b"\\HasNoChildren"), b"/", "[Gmail]/All Mail"),
    ((b"\\Drafts", b"\\HasNoChildren"), b"/", "[Gmail]/Drafts"),
    ((b"\\HasNoChildren", b"\\Sent"), b"/", "[Gmail]/Sent Mail"),
    ((b"\\HasNoChildren", b"\\Trash"), b"/", "[Gmail]/Trash"),
]


def test_gmail_sent_by_special_use():
    folders = [Folder.from_listing(item) for item in GMAIL_LIST]
    assert [f.name for f in folders][:2] == ["INBOX", "[Gmail]"]
    assert not folders[1].selectable
    assert pick_sent_folder(folders).name == "[Gmail]/Sent Mail"


def test_listing_nil_delimiter_and_unicode_name():
    folders = [Folder.from_listing(item) for item in [
        ((b"\\HasNoChildren", b"\\Sent"), b".", "Gesendete Objekte"),
        ((b"\\Noinferiors",), None, "Flat"),
        ((b"\\HasNoChildren",), b".", "INBOX.Entwürfe"),
    ]]
    assert [(f.name, f.delimiter) for f in folders] == [("Gesendete Objekte", "."), ("Flat", None), ("INBOX.Entwürfe", ".")]
    assert folders[0].flags == {"\\hasnochildren", "\\sent"}
    assert pick_sent_folder(folders).name == "Gesendete Objekte"


@pytest.mark.parametrize(
    "names, expect",
    [
        (["INBOX", "Sent Items", "Deleted Items"], "Sent Items"),  # Exchange/Outlook
        (["INBOX", "INBOX.Sent", "INBOX.Trash"], "INBOX.Sent"),  # Courier-style
        (["INBOX", "Sent Messages"], "Sent Messages"),  # iCloud
        (["INBOX", "sent"], "sent"),
        (["INBOX", "Archive"], None),
    ],
)
def test_sent_fallback_names(names, expect):
    folders = [Folder.from_listing(((b"\\HasNoChildren",), b"/", n)) for n in names]
    got = pick_sent_folder(folders)
    assert (got.name if got else None) == expect


# --------------------------------------------------------------------------- UIDs / batches


def test_batches_by_count_and_bytes():
    uids = [(i, 10) for i in range(1, 8)]
    assert list(batches(uids, count=3, max_bytes=10**9)) == [[1, 2, 3], [4, 5, 6], [7]]
    assert list(batches(uids, count=100, max_bytes=25)) == [[1, 2], [3, 4], [5, 6], [7]]
    # one huge message still goes, alone
    assert list(batches([(1, 5), (2, 999), (3, 5)], count=10, max_bytes=100)) == [[1], [2], [3]]


# --------------------------------------------------------------------------- state


def test_state_roundtrip_atomic_0600(tmp_path):
    p = tmp_path / "sub" / "imap-state.json"
    assert load_state(p) == {"version": 1, "folders": {}}
    save_state(p, {"version": 1, "folders": {"u@h/Sent": {"uidvalidity": 5, "last_uid": 9}}})
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert load_state(p)["folders"]["u@h/Sent"] == {"uidvalidity": 5, "last_uid": 9}
    assert [x.name for x in p.parent.iterdir()] == ["imap-state.json"]  # no temp files left


def test_damaged_state_is_an_error(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{not json")
    with pytest.raises(MailvoiceError, match="damaged"):
        load_state(p)
    p.write_text(json.dumps([1, 2]))
    with pytest.raises(MailvoiceError, match="damaged"):
        load_state(p)
