"""EmailAI source pieces that need no database or network: URL handling, unreachable DB."""

from __future__ import annotations

import pytest

from mailvoice.errors import MailvoiceError
from mailvoice.sources.emailai_db import EmailAISource, open_emailai, parse_spec, prepare_db_url, redact_url


def test_db_unreachable_one_line_no_password():
    src = EmailAISource("postgresql://mvuser:hunter2-s3cret@127.0.0.1:1/emailai?schema=public",
                        "clu_alice_0001", env={}, connect_timeout=3)
    with pytest.raises(MailvoiceError) as ei:
        src.user_emails()
    msg = str(ei.value)
    assert "\n" not in msg and "hunter2" not in msg
    assert "cannot connect to the EmailAI database at postgresql://mvuser:***@127.0.0.1:1/emailai" in msg


def test_url_helpers():
    assert redact_url("postgresql://u:p%40ss@h:5432/db?sslmode=require") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgres://h/db") == "postgres://h/db"
    assert prepare_db_url("postgres://u:p@h/db?schema=app&sslmode=require&pgbouncer=true") == (
        "postgresql://u:p@h/db?sslmode=require", "app")
    assert parse_spec("emailai:alice@example.com", {"DATABASE_URL": "postgresql://h/d"}) == (
        "postgresql://h/d", "alice@example.com")
    assert parse_spec("emailai:postgresql://h/d#u1") == ("postgresql://h/d", "u1")
    assert parse_spec("postgresql://h/d") == ("postgresql://h/d", None)


def test_open_emailai_needs_a_user_and_a_database():
    with pytest.raises(MailvoiceError, match="which EmailAI user"):
        open_emailai("postgresql://h/d", env={})
    with pytest.raises(MailvoiceError, match="DATABASE_URL"):
        open_emailai("emailai:alice@example.com", env={})
    with pytest.raises(MailvoiceError, match="postgresql://"):
        parse_spec("mysql://h/d")


def test_unparsable_port_is_still_redacted():
    with pytest.raises(MailvoiceError) as ei:
        EmailAISource("postgresql://u:pass-SECRET@localhost:notaport/x", "u", env={}).user_emails()
    assert "pass-SECRET" not in str(ei.value) and "\n" not in str(ei.value)
