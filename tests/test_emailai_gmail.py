"""The Gmail REST client against the local fake of Gmail + Google's token endpoint."""

from __future__ import annotations

import logging

import pytest

from mailvoice.errors import MailvoiceError
from mailvoice.sources.gmail import GmailClient, decode_base64url, encode_base64url

try:
    from tests.fakes.gmail_server import FakeGoogle
except ImportError:  # tests/ itself on sys.path
    from fakes.gmail_server import FakeGoogle

ACCESS = "ya29.valid-access-token-SECRET"
REFRESH = "1//refresh-token-SECRET"


def raw_message(i: int) -> bytes:
    return (f"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: note {i}\r\n"
            f"Message-ID: <m{i}@example.com>\r\nDate: Mon, 1 Jan 2024 10:{i % 60:02d}:00 +0000\r\n"
            f"\r\nHello number {i}\r\n").encode()


@pytest.fixture
def google():
    with FakeGoogle() as g:
        yield g


@pytest.fixture
def mailbox(google):
    mb = google.add_mailbox("alice@example.com", access_token=ACCESS, refresh_token=REFRESH)
    for i in range(7):
        mb.add_message(raw_message(i))
    mb.add_message(b"From: bob@example.com\r\n\r\nincoming\r\n", labels=("INBOX",))
    return mb


def client(google, access=ACCESS, refresh=REFRESH, **kw) -> GmailClient:
    kw.setdefault("sleep", lambda s: None)
    kw.setdefault("backoff_base", 0.001)
    return GmailClient(access, refresh, client_id=google.client_id,
                       client_secret=google.client_secret, api_base=google.api_base,
                       token_url=google.token_url, label="alice@example.com", **kw)


def test_base64url_with_and_without_padding():
    for n in range(6):
        data = bytes(range(250, 250 - n, -1)) + b"\xff\xfe"
        assert decode_base64url(encode_base64url(data, padding=True)) == data
        assert decode_base64url(encode_base64url(data, padding=False)) == data
    with pytest.raises(MailvoiceError):
        decode_base64url("not base64 !!")


def test_list_paginates_and_get_raw(google, mailbox):
    with client(google) as c:
        refs = list(c.list_messages("in:sent", page_size=3))
        assert len(refs) == 7  # the INBOX message is not in:sent
        assert google.count("list") == 3  # 3 + 3 + 1
        assert [r.id for r in refs] == [m.id for m in reversed(mailbox.messages[:7])]
        assert all(r.thread_id for r in refs)
        assert c.get_raw(refs[-1].id) == raw_message(0)
        assert c.get_raw("does-not-exist") is None
    assert all(r.authorization == f"Bearer {ACCESS}" for r in google.requests)
    # the token never travels in a URL
    assert not any(ACCESS in str(r.query) for r in google.requests)


def test_list_limit_and_empty(google, mailbox):
    with client(google) as c:
        assert len(list(c.list_messages(page_size=2, limit=3))) == 3
        assert list(c.list_messages("in:trash")) == []


def test_refresh_once_on_401(google, mailbox, caplog):
    google.expire(ACCESS)
    caplog.set_level(logging.DEBUG)
    with client(google) as c:
        refs = list(c.list_messages())
        assert len(refs) == 7 and c.refresh_count == 1 and google.refreshes == 1
        assert c.expires_at is not None
    assert [r.status for r in google.requests[:3]] == [401, 200, 200]
    for secret in (ACCESS, REFRESH, google.client_secret):
        assert secret not in caplog.text


def test_no_access_token_refreshes_first(google, mailbox):
    with client(google, access=None) as c:
        assert len(list(c.list_messages())) == 7
    assert google.requests[0].path == "/token"


def test_401_without_refresh_token(google, mailbox):
    google.expire(ACCESS)
    with client(google, refresh=None) as c, pytest.raises(MailvoiceError, match="no refresh token"):
        list(c.list_messages())


def test_revoked_refresh_token(google, mailbox):
    google.revoke(REFRESH)
    with client(google) as c, pytest.raises(MailvoiceError) as ei:
        list(c.list_messages())
    msg = str(ei.value)
    assert "invalid_grant" in msg and "revoked" in msg and "\n" not in msg
    assert REFRESH not in msg and ACCESS not in msg


def test_bad_client_credentials(google, mailbox):
    google.expire(ACCESS)
    c = GmailClient(ACCESS, REFRESH, client_id="wrong", client_secret="nope-SECRET",
                    api_base=google.api_base, token_url=google.token_url, sleep=lambda s: None)
    with c, pytest.raises(MailvoiceError, match="invalid_client") as ei:
        list(c.list_messages())
    assert "nope-SECRET" not in str(ei.value)


def test_missing_client_credentials(google, mailbox):
    google.expire(ACCESS)
    c = GmailClient(ACCESS, REFRESH, api_base=google.api_base, token_url=google.token_url)
    with c, pytest.raises(MailvoiceError, match="GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET"):
        list(c.list_messages())


def test_transient_429_503_are_retried_with_growing_backoff(google, mailbox):
    delays: list[float] = []
    google.inject("get", [429, 503, 500])
    with client(google, sleep=delays.append, backoff_base=0.01, max_tries=4) as c:
        ref = next(c.list_messages())
        assert c.get_raw(ref.id) == raw_message(6)
    assert len(delays) == 3
    assert 0.005 <= delays[0] <= 0.01 and 0.01 <= delays[1] <= 0.02 and 0.02 <= delays[2] <= 0.04


def test_backoff_bound_reached(google, mailbox):
    delays: list[float] = []
    google.inject("list", [503] * 10)
    with client(google, sleep=delays.append, max_tries=3) as c, pytest.raises(MailvoiceError) as ei:
        list(c.list_messages())
    assert "still failing after 3 tries" in str(ei.value) and "HTTP 503" in str(ei.value)
    assert google.count("list") == 3 and len(delays) == 2


def test_retry_after_is_honoured_but_capped(google, mailbox):
    delays: list[float] = []
    google.inject("list", [429], retry_after="120")
    with client(google, sleep=delays.append, backoff_max=2.0) as c:
        list(c.list_messages())
    assert delays == [2.0]


def test_rate_limit_403_is_retried_other_403_is_not(google, mailbox):
    google.inject("list", [403], reason="userRateLimitExceeded")
    with client(google) as c:
        assert len(list(c.list_messages())) == 7
    google.inject("list", [403], reason="insufficientPermissions")
    with client(google) as c, pytest.raises(MailvoiceError, match="HTTP 403, insufficientPermissions"):
        list(c.list_messages())


def test_token_endpoint_503_is_retried(google, mailbox):
    google.expire(ACCESS)
    google.inject("token", [503])
    with client(google) as c:
        assert len(list(c.list_messages())) == 7


def test_network_error_is_bounded():
    c = GmailClient("t", None, api_base="http://127.0.0.1:1", max_tries=2, sleep=lambda s: None)
    with c, pytest.raises(MailvoiceError, match="still failing after 2 tries .network error"):
        list(c.list_messages())
