"""EmailAISource end to end: a real PostgreSQL with EmailAI's schema + the fake Gmail.

Each test gets its own freshly created database (random name, dropped afterwards), once with the
fork's schema (tests/fixtures/emailai_schema.sql: calldatasystems/emailai, column for column) and
once with upstream inbox-zero's (tests/fixtures/inboxzero_schema.sql). Skipped when no PostgreSQL
listens on 127.0.0.1:5432.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")

from mailvoice.errors import MailvoiceError  # noqa: E402
from mailvoice.sources.base import SourceStats  # noqa: E402
from mailvoice.sources.emailai_db import (  # noqa: E402
    EmailAISource,
    open_emailai,
    prepare_db_url,
)
from mailvoice.sources.tokencrypt import WRONG_SECRET, encrypt_token  # noqa: E402

try:
    from tests.fakes.gmail_server import FakeGoogle
except ImportError:
    from fakes.gmail_server import FakeGoogle

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "test-google-encrypt-secret"
SALT = "test-google-encrypt-salt"
AI_TEXT = "AI-WRITTEN-DRAFT-CONTENT-MUST-NOT-APPEAR"
PG_HOST, PG_PORT = "127.0.0.1", int(os.environ.get("MAILVOICE_TEST_PG_PORT", "5432"))


def _admin_url() -> str | None:
    for user in ("postgres", "root", os.environ.get("USER") or "postgres"):
        url = f"postgresql://{user}@{PG_HOST}:{PG_PORT}/test"
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.Error:
            continue
    return None


ADMIN_URL = _admin_url()
pytestmark = [pytest.mark.services,
              pytest.mark.skipif(ADMIN_URL is None, reason="no PostgreSQL on 127.0.0.1:5432")]


SCHEMAS = {"fork": "emailai_schema.sql", "upstream": "inboxzero_schema.sql"}


@pytest.fixture(params=sorted(SCHEMAS))
def db_url(request):
    name = f"mv_emailai_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute((FIXTURES / SCHEMAS[request.param]).read_text())
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def google():
    with FakeGoogle() as g:
        yield g


def mail(i: int, frm: str, *, to="bob@example.com", subject=None, auto=False) -> bytes:
    m = EmailMessage()
    m["From"] = f"Alice Example <{frm}>"
    m["To"] = to
    m["Subject"] = subject or f"Subject {i}"
    m["Message-ID"] = f"<msg{i}.{frm.replace('@', '.at.')}@mail.example.com>"
    m["Date"] = format_datetime(datetime(2024, 3, 1, 9, 0, tzinfo=UTC) + timedelta(hours=i))
    if auto:
        m["Auto-Submitted"] = "auto-replied"
    m.set_content(f"Hi Bob,\n\nThis is message {i} from {frm}.\n\nAlice\n")
    return m.as_bytes()


@dataclass
class World:
    url: str
    google: FakeGoogle
    user_id: str = "clu_alice_0001"
    main: str = "alice@example.com"
    work: str = "alice.work@example.org"
    main_gmail_ids: list[str] = field(default_factory=list)
    work_gmail_ids: list[str] = field(default_factory=list)
    tokens: dict = field(default_factory=dict)

    @property
    def has_sent_text(self) -> bool:
        """Upstream's DraftSendLog keeps the sent text; the fork's has no such column."""
        return bool(self.sql("SELECT 1 FROM information_schema.columns WHERE table_name = 'DraftSendLog' "
                             "AND column_name = 'sentText'"))

    def source(self, **kw) -> EmailAISource:
        kw.setdefault("env", {"GOOGLE_ENCRYPT_SECRET": SECRET, "GOOGLE_ENCRYPT_SALT": SALT,
                              "GOOGLE_CLIENT_ID": self.google.client_id,
                              "GOOGLE_CLIENT_SECRET": self.google.client_secret})
        kw.setdefault("gmail_api_base", self.google.api_base)
        kw.setdefault("token_url", self.google.token_url)
        kw.setdefault("backoff_base", 0.001)
        kw.setdefault("sleep", lambda s: None)
        user = kw.pop("user", self.user_id)
        return EmailAISource(self.url, user, **kw)

    def sql(self, q: str, params=()):
        with psycopg.connect(self.url, autocommit=True) as c:
            cur = c.execute(q, params)
            return cur.fetchall() if cur.description else None


def build_world(url: str, google: FakeGoogle, *, n_main=4, n_work=5, secret=SECRET, salt=SALT,
                expires_at=None, encrypt=None) -> World:
    """User alice with two Gmail accounts: main (EmailMessage rows) and work (none: in:sent)."""
    w = World(url, google)
    encrypt = encrypt or (lambda p: encrypt_token(p, secret, salt))
    future = expires_at if expires_at is not None else datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    now = datetime(2024, 3, 1, 8, 0)
    with psycopg.connect(url, autocommit=True) as c:
        kind = c.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'Account' "
                         "AND column_name = 'expires_at'").fetchone()[0]
        if kind == "integer":  # the fork: epoch seconds (NextAuth's Prisma adapter)
            future = int(future.replace(tzinfo=UTC).timestamp())
        c.execute('INSERT INTO "User" ("id","updatedAt","name","email","aiApiKey") VALUES (%s,%s,%s,%s,%s)',
                  (w.user_id, now, "Alice Example", w.main, "sk-user-secret"))
        # someone else, to check scoping
        c.execute('INSERT INTO "User" ("id","updatedAt","email") VALUES (%s,%s,%s)',
                  ("clu_mallory_0002", now, "mallory@example.net"))
        for n, (email, sig) in enumerate([(w.main, "-- \nAlice Example\nACME Corp"),
                                          (w.work, None)], start=1):
            at, rt = f"ya29.access-{n}-SECRET", f"1//refresh-{n}-SECRET"
            w.tokens[email] = (at, rt)
            google.add_mailbox(email, access_token=at, refresh_token=rt)
            c.execute('INSERT INTO "Account" ("id","updatedAt","userId","type","provider",'
                      '"providerAccountId","access_token","refresh_token","expires_at") '
                      'VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)',
                      (f"acc_{n}", now, w.user_id, "oidc", "google", f"google-sub-{n}",
                       encrypt(at), encrypt(rt), future))
            c.execute('INSERT INTO "EmailAccount" ("id","email","updatedAt","signature","about",'
                      '"userId","accountId") VALUES (%s,%s,%s,%s,%s,%s,%s)',
                      (f"ea_{n}", email, now, sig, "I run ACME", w.user_id, f"acc_{n}"))
        mb_main, mb_work = google._mailboxes[w.main], google._mailboxes[w.work]
        for i in range(n_main):
            m = mb_main.add_message(mail(i, w.main), thread_id=f"thr{i % 2}")
            w.main_gmail_ids.append(m.id)
            c.execute('INSERT INTO "EmailMessage" ("id","updatedAt","threadId","messageId","date",'
                      '"from","fromDomain","to","read","sent","draft","inbox","emailAccountId") '
                      'VALUES (%s,%s,%s,%s,%s,%s,%s,%s,true,true,false,false,%s)',
                      (f"em_{i}", now, m.thread_id, m.id, now + timedelta(hours=i), w.main,
                       "example.com", "bob@example.com", "ea_1"))
        # a received message and a draft: listed in the table but not sent mail
        r = mb_main.add_message(mail(100, "bob@example.com", to=w.main), labels=("INBOX",))
        d = mb_main.add_message(mail(101, w.main), labels=("DRAFT",))
        for rid, (m, sent, draft) in enumerate([(r, False, False), (d, True, True)]):
            c.execute('INSERT INTO "EmailMessage" ("id","updatedAt","threadId","messageId","date",'
                      '"from","fromDomain","to","read","sent","draft","inbox","emailAccountId") '
                      'VALUES (%s,%s,%s,%s,%s,%s,%s,%s,true,%s,%s,true,%s)',
                      (f"em_x{rid}", now, m.thread_id, m.id, now, "bob@example.com", "example.com",
                       w.main, sent, draft, "ea_1"))
        for i in range(n_work):
            w.work_gmail_ids.append(mb_work.add_message(mail(200 + i, w.work)).id)
        mb_work.add_message(mail(300, "carol@example.org", to=w.work), labels=("INBOX",))
    return w


@pytest.fixture
def world(db_url, google) -> World:
    return build_world(db_url, google)


def add_draftsendlog(w: World, n: int, *, text: str | None, sent_message_id: str,
                     account="ea_1", thread="thr-dsl"):
    w.sql('INSERT INTO "ExecutedRule" ("id","updatedAt","threadId","messageId","status",'
          '"automated","emailAccountId") VALUES (%s,%s,%s,%s,%s,true,%s)',
          (f"er_{n}", datetime(2024, 4, 1), thread, f"in-{n}", "APPLIED", account))
    w.sql('INSERT INTO "ExecutedAction" ("id","updatedAt","type","executedRuleId","content") '
          'VALUES (%s,%s,%s,%s,%s)', (f"ea_act_{n}", datetime(2024, 4, 1), "DRAFT_EMAIL", f"er_{n}", AI_TEXT))
    if w.has_sent_text:
        w.sql('INSERT INTO "DraftSendLog" ("id","createdAt","executedActionId","sentMessageId",'
              '"similarityScore","sentText") VALUES (%s,%s,%s,%s,%s,%s)',
              (f"dsl_{n}", datetime(2024, 4, 2, 12, n), f"ea_act_{n}", sent_message_id, 0.7, text))
    else:  # the fork keeps no text: the row exists, and yields nothing
        w.sql('INSERT INTO "DraftSendLog" ("id","createdAt","executedActionId","sentMessageId",'
              '"similarityScore") VALUES (%s,%s,%s,%s,%s)',
              (f"dsl_{n}", datetime(2024, 4, 2, 12, n), f"ea_act_{n}", sent_message_id, 0.7))


# -- tests ---------------------------------------------------------------------------------------


def test_end_to_end(world):
    add_draftsendlog(world, 1, text="Thanks, sounds good. I'll send it Friday.\n\nAlice",
                     sent_message_id="18fffffffff00001")
    with world.source() as src:
        assert src.user_emails() == [world.main, world.work]
        assert src.signatures() == {world.main: "-- \nAlice Example\nACME Corp"}
        recs = list(src)
    by_source = {}
    for r in recs:
        by_source.setdefault(r.source, []).append(r)
    main, work = by_source[f"emailai:{world.main}"], by_source[f"emailai:{world.work}"]
    dsl_n = 1 if world.has_sent_text else 0  # upstream's DraftSendLog text; the fork has none
    assert len(main) == 4 + dsl_n and len(work) == 5  # 4 sent (+ 1 DraftSendLog); 5 via in:sent
    gm = [r for r in main if not r.message_id.startswith("draftsendlog:")]
    assert {r.message_id for r in gm} == {f"msg{i}.alice.at.example.com@mail.example.com" for i in range(4)}
    assert {r.thread_id for r in gm} == {"gmail:thr0", "gmail:thr1"}
    assert all("SENT" in r.labels for r in recs)
    assert all(r.from_addr in (world.main, world.work) for r in recs)
    assert "This is message 2 from alice@example.com." in next(
        r.text for r in gm if r.message_id.startswith("msg2."))
    first = next(r for r in gm if r.subject == "Subject 0")  # Gmail lists newest first
    assert first.date == "2024-03-01T09:00:00+00:00" and gm[0].subject == "Subject 3"
    dsl = [r for r in main if r.message_id.startswith("draftsendlog:")]
    assert [r.message_id for r in dsl] == ["draftsendlog:dsl_1"][:dsl_n]
    if dsl_n:
        assert dsl[0].subject == "" and dsl[0].thread_id == "gmail:thr-dsl"
        assert dsl[0].text.startswith("Thanks, sounds good") and dsl[0].date == "2024-04-02T12:01:00+00:00"
    # never the AI-written ExecutedAction.content, never a token or secret
    dump = "\n".join(r.to_json() for r in recs)
    for bad in (AI_TEXT, "SECRET", "sk-user-secret"):
        assert bad not in dump
    # every account is listed from Gmail; EmailMessage (the app's cache) added nothing Gmail lacked
    assert src.stats.listed_from == {world.main: "gmail", world.work: "gmail"}
    assert src.stats.fetched == 9 and src.stats.draftsendlog == dsl_n and src.stats.hinted == 0
    assert src.stats.emailmessage_rows == 4 and src.stats.listed_gmail == 9
    # the received and the draft rows were not fetched
    fetched = {r.path.rsplit("/", 1)[1] for r in world.google.requests if "/messages/" in r.path}
    assert fetched == set(world.main_gmail_ids) | set(world.work_gmail_ids)


def test_is_a_streaming_iterator(world):
    src = world.source(concurrency=2)
    assert iter(src) is src
    first = next(src)
    assert first.source == f"emailai:{world.main}"
    assert world.google.count("get") <= 2  # no more fetched ahead than the window
    rest = list(src)
    assert len(rest) == 8
    assert list(src) == []
    src.close()


def test_pipeline_records_filters_and_counts(world):
    mb = world.google._mailboxes[world.work]
    mb.add_message(mail(400, world.work, auto=True))  # an auto-reply: dropped by the filters
    stats = SourceStats()
    with world.source() as src:
        recs = list(src.records(user_emails=frozenset(src.user_emails()), stats=stats))
    assert len(recs) == 9 and stats.seen == 10 and stats.dropped["auto_submitted"] == 1
    assert {r.source for r in recs} == {f"emailai:{world.main}", f"emailai:{world.work}"}
    assert all(r.thread_id.startswith("gmail:") for r in recs)


def test_iter_raw(world):
    with world.source(include_draftsendlog=False) as src:
        raws = list(src.iter_raw())
    assert len(raws) == 9 and all(r.labels == ("SENT",) and r.error is None for r in raws)
    assert raws[0].data.startswith(b"From: Alice Example")


def test_pagination_across_pages(world):
    with world.source(page_size=2, accounts=[world.work]) as src:
        recs = list(src)
    assert len(recs) == 5
    assert world.google.count("list") == 3  # 2 + 2 + 1
    assert len({r.message_id for r in recs}) == 5


def test_db_listing_pages_with_keyset(db_url, google):
    """EmailMessage is a hint: sent rows Gmail's in:sent list lacks are fetched too (keyset pages)."""
    w = build_world(db_url, google, n_main=7, n_work=0)
    for m in google._mailboxes[w.main].messages:
        m.labels = tuple(x for x in m.labels if x != "SENT")  # in Gmail, but not in its in:sent list
    with w.source(page_size=3, accounts=[w.main]) as src:
        recs = list(src)
        assert src.stats.hinted == 7 and src.stats.listed_gmail == 0
        assert src.stats.listed_from == {w.main: "gmail+EmailMessage"}
    assert len(recs) == 7 and len({r.message_id for r in recs}) == 7
    assert google.count("list") == 1


def test_refresh_on_401(world, caplog):
    caplog.set_level(logging.DEBUG)
    world.google.expire(world.tokens[world.main][0])  # DB says valid, Google says no
    with world.source(accounts=[world.main]) as src:
        recs = list(src)
        assert src.stats.token_refreshes == 1
    assert len(recs) == 4
    assert world.google.refreshes == 1
    assert [r.status for r in world.google.requests[:3]] == [401, 200, 200]
    assert "refreshing the access token" in caplog.text
    for secret in ("SECRET", "ya29.fresh", world.google.client_secret, SALT):
        assert secret not in caplog.text


def test_expired_fork_int_expires_at_refreshes_before_calling_gmail(db_url, google):
    w = build_world(db_url, google)
    w.sql('ALTER TABLE "Account" ALTER COLUMN "expires_at" DROP DEFAULT')
    w.sql('ALTER TABLE "Account" ALTER COLUMN "expires_at" TYPE INTEGER USING 0')
    w.sql('UPDATE "Account" SET "expires_at" = %s', (int(time.time()) - 3600,))
    for at, _ in w.tokens.values():
        google.expire(at)
    with w.source() as src:
        assert len(list(src)) == 9
        assert src.stats.token_refreshes == 2
    assert not any(r.status == 401 for r in google.requests)
    assert google.requests[0].path == "/token"


def test_int_expires_at_in_future_no_refresh(db_url, google):
    w = build_world(db_url, google)
    w.sql('ALTER TABLE "Account" ALTER COLUMN "expires_at" DROP DEFAULT')
    w.sql('ALTER TABLE "Account" ALTER COLUMN "expires_at" TYPE INTEGER USING %s' % (int(time.time()) + 3600))
    with w.source() as src:
        assert len(list(src)) == 9
    assert google.refreshes == 0


def test_expired_timestamp_refreshes(db_url, google):
    w = build_world(db_url, google, expires_at=datetime(2020, 1, 1))
    with w.source() as src:
        list(src)
    assert google.refreshes == 2


def test_backoff_bound_reached(world):
    world.google.inject("get", [503] * 20)
    delays = []
    with world.source(max_tries=3, sleep=delays.append, concurrency=1) as src, pytest.raises(MailvoiceError) as ei:
        list(src)
    msg = str(ei.value)
    assert "still failing after 3 tries" in msg and "HTTP 503" in msg and "\n" not in msg
    assert world.google.count("get") == 3 and len(delays) == 2
    assert "SECRET" not in msg


def test_all_sent_mail_is_read_when_emailmessage_holds_one_of_eight(db_url, google):
    """The app's EmailMessage cache holds 1 of the 8 sent emails: all 8 are listed from Gmail and read."""
    w = build_world(db_url, google, n_main=1, n_work=0)
    mb = google._mailboxes[w.main]
    for i in range(7):
        w.main_gmail_ids.append(mb.add_message(mail(10 + i, w.main)).id)
    with w.source(accounts=[w.main], include_draftsendlog=False) as src:
        recs = list(src)
        st = src.stats
    assert len(recs) == 8 and {r.message_id for r in recs} == {
        f"msg{i}.alice.at.example.com@mail.example.com" for i in [0, *range(10, 17)]}
    assert (st.listed, st.fetched, st.listed_gmail, st.emailmessage_rows, st.hinted) == (8, 8, 8, 1, 0)


def test_concurrent_fetches_back_off_on_gmails_429(db_url):
    """Fetches run several at a time; Gmail's per-user concurrency 429s are retried with backoff
    (real sleeps, small) and every message is still read, in Gmail's list order."""
    with FakeGoogle(max_concurrent=3, get_delay=0.02) as g:
        w = build_world(db_url, g, n_main=0, n_work=24)
        delays = []

        def sleep(s):
            delays.append(s)
            time.sleep(s)

        with w.source(accounts=[w.work], concurrency=6, max_tries=12, backoff_base=0.01, backoff_max=0.2,
                      sleep=sleep) as src:
            recs = list(src)
        assert len(recs) == 24 and src.stats.fetched == 24
        assert [r.message_id for r in recs] == [f"msg{200 + i}.alice.work.at.example.org@mail.example.com"
                                                for i in reversed(range(24))]
        assert g.peak_in_flight > 1  # really concurrent
        rejected = [r for r in g.requests if r.status == 429]
        assert rejected and len(delays) >= len(rejected)  # every 429 was followed by a backoff


def test_transient_errors_recover(world):
    world.google.inject("get", [429, 503])
    world.google.inject("list", [500])
    with world.source(max_tries=4) as src:
        assert len(list(src)) == 9


def test_revoked_token(world):
    at, rt = world.tokens[world.main]
    world.google.revoke(rt)
    with world.source() as src, pytest.raises(MailvoiceError) as ei:
        list(src)
    msg = str(ei.value)
    assert "invalid_grant" in msg and world.main in msg and "reconnect" in msg
    assert at not in msg and rt not in msg and "\n" not in msg


def test_wrong_secret(db_url, google):
    w = build_world(db_url, google, secret="another-secret")
    with w.source() as src, pytest.raises(MailvoiceError) as ei:
        src.user_emails()
    assert str(ei.value) == WRONG_SECRET


def test_missing_secret(world):
    with world.source(env={}) as src, pytest.raises(MailvoiceError, match="GOOGLE_ENCRYPT_SECRET"):
        list(src)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_encrypted_tokens_in_db(db_url, google):
    script = FIXTURES / "node_token_vectors.js"

    def node_encrypt(p: str) -> str:
        out = subprocess.run(["node", str(script), "encrypt"], capture_output=True, text=True,
                             input=json.dumps({"secret": SECRET, "salt": SALT, "plaintexts": [p]}),
                             check=True, timeout=60)
        return json.loads(out.stdout)["vectors"][0]["token"]

    w = build_world(db_url, google, encrypt=node_encrypt)
    with w.source() as src:
        assert len(list(src)) == 9
    assert google.refreshes == 0


def test_unknown_user(world):
    with world.source(user="clu_nobody") as src, pytest.raises(MailvoiceError) as ei:
        src.user_emails()
    assert "no EmailAI user" in str(ei.value)


def test_user_by_email_and_by_account_email(world):
    for who in ("ALICE@example.com", world.work):
        with world.source(user=who) as src:
            assert src.user_emails() == [world.main, world.work]


def test_sql_injection_in_user_id_is_harmless(world):
    for evil in ("x' OR '1'='1", "clu_alice_0001' --", "'; DROP TABLE \"User\"; --",
                 "a@b.c' OR 1=1 --", 'x") OR ("1"="1'):
        with world.source(user=evil) as src, pytest.raises(MailvoiceError, match="no EmailAI user"):
            src.user_emails()
    assert world.sql('SELECT count(*) FROM "User"') == [(2,)]


def test_connection_is_read_only(world):
    with world.source() as src:
        src.user_emails()
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            src._connect().execute('DELETE FROM "User"')


def test_bad_password_message_is_redacted(world):
    # trust auth accepts any password: use a wrong database instead, through the same path
    url = world.url.rsplit("/", 1)[0].replace("@", ":pw-SECRET@", 1) + "/mv_no_such_db"
    with pytest.raises(MailvoiceError) as ei:
        EmailAISource(url, "u", env={}).user_emails()
    assert "pw-SECRET" not in str(ei.value) and "\n" not in str(ei.value)


def test_fallback_to_in_sent_when_emailmessage_empty(world):
    world.sql('DELETE FROM "EmailMessage"')
    with world.source() as src:
        recs = list(src)
        assert src.stats.listed_from == {world.main: "gmail", world.work: "gmail"}
    # main mailbox in:sent = the 4 sent (the draft and the received are not in:sent)
    assert len(recs) == 9
    assert world.google.count("list") == 2


def test_draftsendlog(world):
    add_draftsendlog(world, 1, text="Yes — Tuesday works.\n\nA.", sent_message_id="18aaaa")
    add_draftsendlog(world, 2, text=None, sent_message_id="18bbbb")  # no text: nothing
    # same reply as a Gmail message already yielded: not a second copy
    add_draftsendlog(world, 3, text="dup", sent_message_id=world.main_gmail_ids[0])
    add_draftsendlog(world, 4, text="for the work account", sent_message_id="18cccc", account="ea_2")
    with world.source() as src:
        recs = [r for r in src if r.message_id.startswith("draftsendlog:")]
        assert src.stats.draftsendlog_duplicates == (1 if world.has_sent_text else 0)
    if not world.has_sent_text:  # the fork's DraftSendLog has no text to read
        assert recs == []
        return
    assert [(r.message_id, r.source) for r in recs] == [
        ("draftsendlog:dsl_1", f"emailai:{world.main}"),
        ("draftsendlog:dsl_4", f"emailai:{world.work}"),
    ]
    assert all(AI_TEXT not in (r.text or "") for r in recs)


def test_no_draftsendlog_table(world):
    world.sql('DROP TABLE "DraftSendLog"')
    with world.source() as src:
        assert len(list(src)) == 9


def test_draftsendlog_without_senttext_column(world):
    world.sql('ALTER TABLE "DraftSendLog" DROP COLUMN IF EXISTS "sentText"')
    with world.source() as src:
        assert len(list(src)) == 9


def test_vanished_message_is_skipped(world):
    mb = world.google._mailboxes[world.main]
    mb.messages = [m for m in mb.messages if m.id != world.main_gmail_ids[1]]
    with world.source() as src:
        assert len(list(src)) == 8
        assert src.stats.missing == 1


def test_limit(world):
    with world.source(limit=3) as src:
        assert len(list(src)) == 3


def test_non_google_account_skipped(world):
    world.sql('UPDATE "Account" SET "provider" = %s WHERE "id" = %s', ("microsoft", "acc_2"))
    with world.source() as src:
        recs = list(src)
        assert src.stats.accounts_skipped == 1
    assert {r.source for r in recs} == {f"emailai:{world.main}"}


def test_open_emailai_specs(world):
    kw = dict(env={"GOOGLE_ENCRYPT_SECRET": SECRET, "GOOGLE_ENCRYPT_SALT": SALT,
                   "GOOGLE_CLIENT_ID": "x", "GOOGLE_CLIENT_SECRET": "y"},
              gmail_api_base=world.google.api_base, token_url=world.google.token_url,
              sleep=lambda s: None, some_generic_option=True)
    src = open_emailai(world.url + "?schema=public&connection_limit=5", user=world.user_id, **kw)
    assert len(list(src)) == 9
    src = open_emailai(world.url.replace("postgresql://", "postgres://") + "#" + world.main, **kw)
    assert src.user_emails()[0] == world.main
    kw["env"] = {**kw["env"], "DATABASE_URL": world.url}
    src = open_emailai(f"emailai:{world.user_id}", **kw)
    assert src.user_emails()[0] == world.main
    with pytest.raises(MailvoiceError, match="which EmailAI user"):
        open_emailai(world.url, **kw)


def test_schema_param_sets_search_path(world):
    world.sql('CREATE SCHEMA "other"')
    with world.source() as src:
        src._db_url, src._schema = prepare_db_url(world.url + "?schema=other")
        with pytest.raises(MailvoiceError, match="does not look like an EmailAI database"):
            src.user_emails()


def test_through_read_sources_dispatcher(world, monkeypatch):
    sources = pytest.importorskip("mailvoice.sources")
    if not hasattr(sources, "read_sources"):
        pytest.skip("mailvoice.sources.read_sources not there yet")
    for k, v in {"GOOGLE_ENCRYPT_SECRET": SECRET, "GOOGLE_ENCRYPT_SALT": SALT,
                 "GOOGLE_CLIENT_ID": world.google.client_id,
                 "GOOGLE_CLIENT_SECRET": world.google.client_secret,
                 "MAILVOICE_GMAIL_API_BASE": world.google.api_base,
                 "MAILVOICE_GOOGLE_TOKEN_URL": world.google.token_url,
                 "DATABASE_URL": world.url}.items():
        monkeypatch.setenv(k, v)
    add_draftsendlog(world, 1, text="Fine by me.\n\nA.", sent_message_id="18dddd")
    stats = SourceStats()
    recs = list(sources.read_sources([f"emailai:{world.main}", world.url + "#" + world.user_id],
                                     user_emails=[world.main, world.work], stats=stats))
    n = 10 if world.has_sent_text else 9  # the fork has no DraftSendLog text
    assert len(recs) == n  # the second spec is the same mail: all duplicates
    assert stats.dropped["duplicate"] == n and stats.kept == n


def test_cli_prepare_reads_all_eight_when_emailmessage_holds_one(db_url, google, tmp_path):
    """`mailvoice prepare --db-url` (a subprocess) on an account whose EmailMessage holds 1 of 8
    sent emails: all 8 are read, and it says found vs read."""
    import sys

    w = build_world(db_url, google, n_main=1, n_work=0)
    mb = google._mailboxes[w.main]
    for i in range(7):
        mb.add_message(mail(10 + i, w.main, subject=f"Garden plan {i}"))
    env = {**os.environ, "GOOGLE_ENCRYPT_SECRET": SECRET, "GOOGLE_ENCRYPT_SALT": SALT,
           "GOOGLE_CLIENT_ID": google.client_id, "GOOGLE_CLIENT_SECRET": google.client_secret,
           "MAILVOICE_GMAIL_API_BASE": google.api_base, "MAILVOICE_GOOGLE_TOKEN_URL": google.token_url,
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "data"
    r = subprocess.run([sys.executable, "-m", "mailvoice", "prepare", "--user-id", w.user_id, "--db-url", w.url,
                        "--output", str(out), "--min-emails", "3", "--workspace", str(tmp_path / "ws")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 8
    meta = json.loads((out / "dataset_alpaca.json").read_text())["metadata"]
    assert meta["source_stats"]["emailai"] == {"found": 8, "read": 8, "gone": 0, "listed_gmail": 8,
                                               "emailmessage_rows": 1, "only_in_emailmessage": 0, "draftsendlog": 0}
    assert "found 8 sent emails" in " ".join((r.stdout + r.stderr).split())
