"""parse_message: headers, ids, dates, bodies, charsets, malformed MIME, big attachments."""

from __future__ import annotations

import hashlib
import os
from email import policy
from email.message import EmailMessage

import pytest

from mailvoice.errors import MailvoiceError
from mailvoice.sources import BadMessage, SourceStats, parse_message
from mailvoice.sources.parse import decode_text, iso_date


def make_msg(
    *,
    frm: str = "Me <me@example.com>",
    to: str = "you@example.org",
    subject: str = "hello",
    body: str | None = "Hi there,\nsee you.\n",
    html: str | None = None,
    msgid: str | None = "<m1@example.com>",
    date: str | None = "Tue, 02 Jan 2024 10:00:00 +0100",
    **headers: str,
) -> EmailMessage:
    m = EmailMessage()
    m["From"] = frm
    m["To"] = to
    m["Subject"] = subject
    if date is not None:
        m["Date"] = date
    if msgid is not None:
        m["Message-ID"] = msgid
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    if body is not None:
        m.set_content(body)
    if html is not None:
        if body is None:
            m.set_content(html, subtype="html")
        else:
            m.add_alternative(html, subtype="html")
    return m


def test_basic_fields():
    m = make_msg(
        frm='"Doe, Jane" <Jane.Doe@Example.COM>',
        to="A <A@X.org>, b@y.org",
        Cc="C@Z.org",
        In_Reply_To="<parent@x>",
        References="<root@x> <parent@x>",
    )
    r = parse_message(m.as_bytes(), source="eml:/t", labels=("Sent",))
    assert r.message_id == "m1@example.com"
    assert r.from_addr == "jane.doe@example.com"
    assert r.from_name == "Doe, Jane"
    assert r.to == ("a@x.org", "b@y.org")
    assert r.cc == ("c@z.org",)
    assert r.date == "2024-01-02T09:00:00+00:00"
    assert r.in_reply_to == "parent@x"
    assert r.references == ("root@x", "parent@x")
    assert r.thread_id == "root@x"
    assert r.text == "Hi there,\nsee you.\n"
    assert r.html is None
    assert r.source == "eml:/t"
    assert r.labels == ("Sent",)


def test_thread_id_fallbacks_and_gmail():
    r = parse_message(make_msg(In_Reply_To="<p@x>").as_bytes(), source="s")
    assert r.thread_id == "p@x"
    r = parse_message(make_msg().as_bytes(), source="s")
    assert r.thread_id == "m1@example.com"
    r = parse_message(make_msg(X_GM_THRID="1234567890").as_bytes(), source="s")
    assert r.thread_id == "gmail:1234567890"


def test_rfc2047_subject_and_name():
    raw = (
        b"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <JM@example.com>\n"
        b"To: x@example.org\n"
        b"Subject: =?UTF-8?B?0J/RgNC40LLQtdGC?= =?ISO-8859-1?Q?_caf=E9?=\n"
        b"  and folded\n"
        b"Message-ID: <a@b>\n\nbody\n"
    )
    r = parse_message(raw, source="s")
    assert r.subject == "Привет café and folded"
    assert r.from_name == "Jörg Müller"
    assert r.from_addr == "jm@example.com"


def test_missing_message_id_uses_sha256():
    raw = make_msg(msgid=None).as_bytes()
    r = parse_message(raw, source="s")
    assert r.message_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert r.thread_id == r.message_id


def test_bad_and_missing_dates():
    assert parse_message(make_msg(date="not a date").as_bytes(), source="s").date is None
    assert parse_message(make_msg(date=None).as_bytes(), source="s").date is None
    assert iso_date("Mon, 1 Jan 2024 00:00:00 -0000") == "2024-01-01T00:00:00+00:00"
    assert iso_date("Thu, 22 Aug 2002 12:36:23 -0400") == "2002-08-22T16:36:23+00:00"


def test_html_only_and_alternative():
    r = parse_message(make_msg(body=None, html="<p>hi</p>").as_bytes(), source="s")
    assert r.text is None and r.html == "<p>hi</p>\n"
    r = parse_message(make_msg(body="plain\n", html="<b>rich</b>").as_bytes(), source="s")
    assert r.text == "plain\n" and r.html == "<b>rich</b>\n"


def test_unknown_charset_replaced_and_counted():
    raw = (
        b"From: me@example.com\nSubject: x\nMessage-ID: <c@x>\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\n"
        b"Content-Transfer-Encoding: 8bit\n\n"
        b"caf\xe9 ok\n"
    )
    stats = SourceStats()
    r = parse_message(raw, source="s", stats=stats)
    assert r.text == "caf\ufffd ok\n"
    assert stats.errors["charset_unknown"] == 1


def test_undecodable_bytes_replaced_and_counted():
    raw = (
        b"From: me@example.com\nSubject: x\nMessage-ID: <c@x>\n"
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        b"bad \xff\xfe bytes\n"
    )
    stats = SourceStats()
    r = parse_message(raw, source="s", stats=stats)
    assert "bad" in r.text and "\ufffd" in r.text
    assert stats.errors["charset_undecodable"] == 1


def test_charset_fallbacks():
    assert decode_text("café".encode(), "us-ascii") == "café"  # mislabelled UTF-8
    assert decode_text("café".encode("cp1252"), None) == "café"
    assert decode_text("한국".encode("cp949"), "ks_c_5601-1987") == "한국"
    assert decode_text(b"x", "base64") == "x"  # a bytes codec is not a text charset


def test_8bit_headers_repaired():
    raw = "From: Zoë <z@example.com>\nSubject: naïve\nMessage-ID: <h@x>\n\nbody\n".encode()
    r = parse_message(raw, source="s")
    assert r.from_name == "Zoë" and r.subject == "naïve"


def test_malformed_mime_tolerated():
    # multipart without boundary parameter: the email package keeps the body as text
    raw = (
        b"From: me@example.com\nSubject: x\nMessage-ID: <mm@x>\n"
        b"MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n"
        b"just some text\n"
    )
    stats = SourceStats()
    r = parse_message(raw, source="s", stats=stats)
    assert r.text == "just some text\n"
    # boundary declared but never used, broken base64, junk Content-Type on a part
    raw = (
        b"From: me@example.com\nSubject: x\nMessage-ID: <mm2@x>\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XYZ"\n\n'
        b"--XYZ\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
        b"aGVsbG8gd29ybGQ=!!!\n"
        b"--XYZ\nContent-Type: ///garbage\n\nzzz\n"
    )  # and no closing boundary
    r = parse_message(raw, source="s")
    assert r.text is not None and r.text.startswith("hello world")
    raw = b"From: me@example.com\nContent-Type: text\nSubject: y\n\nplain enough\n"
    assert parse_message(raw, source="s").text == "plain enough\n"


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"\x00\x01\x02 binary junk", "no_headers"),
        (b"foo: bar\n\nbody\n", "not_mail"),
    ],
)
def test_hopeless_input_raises_badmessage(raw, reason):
    with pytest.raises(BadMessage) as ei:
        parse_message(raw, source="s")
    assert ei.value.reason == reason
    assert isinstance(ei.value, MailvoiceError)
    assert "\n" not in str(ei.value)


def test_large_attachment_not_in_record(tmp_path):
    m = make_msg(body="Please find the file attached.\n")
    m.add_attachment(os.urandom(50 * 1024 * 1024), maintype="application", subtype="octet-stream", filename="big.bin")
    raw = m.as_bytes(policy=policy.default)
    del m
    assert len(raw) > 50 * 1024 * 1024
    r = parse_message(raw, source="s")
    assert r.text == "Please find the file attached.\n"
    assert r.html is None
    assert len(r.to_json()) < 2000  # nothing of the attachment made it into the record


def test_text_attachment_is_not_the_body():
    m = make_msg(body="The real body.\n")
    m.add_attachment("log line 1\nlog line 2\n", filename="log.txt")
    r = parse_message(m.as_bytes(), source="s")
    assert r.text == "The real body.\n"


def test_crlf_normalised():
    raw = b"From: me@example.com\r\nSubject: s\r\nMessage-ID: <crlf@x>\r\n\r\nline1\r\nline2\r\n"
    assert parse_message(raw, source="s").text == "line1\nline2\n"
