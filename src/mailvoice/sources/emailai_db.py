"""Read one person's sent mail out of an EmailAI (Inbox Zero fork) installation.

EmailAI keeps no message bodies in its database: it stores who the user is, their connected
mail accounts and encrypted OAuth tokens, and (when its analytics sync ran) one
``"EmailMessage"`` row per message. This source therefore

1. resolves the user in ``"User"`` (by id, by e-mail, or by one of their account addresses);
2. reads their ``"EmailAccount"`` rows (address, ``signature`` for the cleaning stage) joined to
   the NextAuth ``"Account"`` rows, and decrypts the tokens (see :mod:`.tokencrypt`);
3. per account lists **every** sent message from Gmail's ``in:sent`` search (all pages). In the
   app ``"EmailMessage"`` is an analytics cache, filled only when the user opens their stats and
   capped per run (``apps/web/utils/actions/stats.ts``), so it is only a hint: its sent rows that
   Gmail's list lacks are fetched too, and ``stats`` reports what was found against what was read;
4. fetches each message's RFC 822 bytes from Gmail (``format=raw``), ``concurrency`` requests at
   a time (in order; 429s and rate-limit 403s are retried with backoff by :class:`GmailClient`),
   and parses them with :func:`mailvoice.sources.parse.parse_message`;
5. where the newer upstream ``"DraftSendLog"."sentText"`` exists, also yields those texts
   (the user's final reply to an AI draft) as records with ``message_id = draftsendlog:<id>``,
   skipping any whose Gmail message was already yielded.

``"ExecutedAction".content`` (AI-written text) is never read. All SQL is static with bound
parameters; the connection is read-only. Refreshed access tokens are kept in memory only.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from mailvoice.errors import MailvoiceError
from mailvoice.redact import libpq_params
from mailvoice.redact import redact_url as _redact_any
from mailvoice.sources.base import RawMail, Source, SourceStats
from mailvoice.sources.gmail import GMAIL_API_BASE, GOOGLE_TOKEN_URL, GmailClient, MessageRef
from mailvoice.sources.record import MailRecord
from mailvoice.sources.tokencrypt import decrypt_token, secret_and_salt_from_env

log = logging.getLogger(__name__)

SENT_LABELS = ("SENT",)
DRAFTSENDLOG_LABELS = ("SENT", "DRAFTSENDLOG")
_EXPIRY_MARGIN_S = 60.0
_PAGE = 500

# Query parameters Prisma understands but libpq rejects.
_PRISMA_ONLY_PARAMS = frozenset({
    "schema", "connection_limit", "pool_timeout", "pgbouncer", "statement_cache_size",
    "socket_timeout", "sslaccept", "sslidentity", "max_connection_lifetime",
    "max_idle_connection_lifetime",
})


@dataclass
class EmailAIAccount:
    """One connected mailbox of the user. ``signature`` is for the cleaning stage."""

    id: str | None
    email: str
    provider: str | None = None
    signature: str | None = None
    about: str | None = None
    writing_style: str | None = None
    # Tokens are held here decrypted; keep them out of repr.
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds


@dataclass
class EmailAIStats:
    accounts: int = 0
    accounts_skipped: int = 0
    listed: int = 0  # found: Gmail's in:sent list plus EmailMessage rows it lacked
    listed_from: dict[str, str] = field(default_factory=dict)  # account -> "gmail" | "gmail+EmailMessage"
    listed_gmail: int = 0  # of ``listed``, from Gmail's list
    hinted: int = 0  # of ``listed``, only from "EmailMessage" (Gmail's list lacked them)
    emailmessage_rows: int = 0  # sent rows "EmailMessage" held (the app's cache): for the report
    fetched: int = 0  # read
    missing: int = 0  # listed but Gmail answered 404
    parse_failed: int = 0
    draftsendlog: int = 0
    draftsendlog_duplicates: int = 0
    token_refreshes: int = 0


def _userinfo(url: str) -> str:
    """Everything between ``://`` and the last ``@`` (where any parser's password lies)."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    return rest.rsplit("@", 1)[0] if "@" in rest else ""


def redact_url(url: str) -> str:
    """``scheme://user:***@host:port/db`` — no password, no query string. A URL whose userinfo
    holds a raw ``@ / ? #`` or space has no agreed reading: then ``scheme://***@host/db``."""
    info = _userinfo(url)
    if re.search(r"[@/?#\s]", info):
        return _redact_any(url)
    try:
        p = urlsplit(url)
        host = p.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{p.port}" if p.port else ""
        user = p.username or ""
        auth = f"{user}{':***' if p.password is not None else ''}@" if user or p.password else ""
        return urlunsplit((p.scheme, f"{auth}{host}{port}", p.path, "", ""))
    except ValueError:  # e.g. a non-numeric port: redact by pattern instead
        head = url.split("?", 1)[0].split("#", 1)[0]
        return re.sub(r"^([a-z][a-z0-9+.-]*://[^:/@]*):[^/]*@", r"\1:***@", head, flags=re.I)


def prepare_db_url(url: str) -> tuple[str, str | None]:
    """Strip Prisma-only query parameters; return (libpq URL, ``?schema=`` value or None)."""
    p = urlsplit(url)
    params = parse_qsl(p.query, keep_blank_values=True)
    schema = None
    kept = []
    for k, v in params:
        if k == "schema":
            schema = v or None
        elif k not in _PRISMA_ONLY_PARAMS:
            kept.append((k, v))
    scheme = "postgresql" if p.scheme in ("postgres", "postgresql") else p.scheme
    return urlunsplit((scheme, p.netloc, p.path, urlencode(kept), "")), schema


def _url_secrets(url: str) -> list[str]:
    """Every string that may be (part of) the password, however a parser read the URL: scrubbed
    from every error message, longest first."""
    info = _userinfo(url)
    found = {_url_password(url), libpq_params(url).get("password", ""), info.partition(":")[2], info}
    found.update(re.split(r"[:@/?#\s]", info.partition(":")[2]))
    return sorted((f for f in found if f), key=len, reverse=True)


def _check_unambiguous(url: str) -> None:
    """Refuse a URL that libpq would read differently from what its writer meant: with an
    unencoded ``@`` in the password, libpq takes the password's tail as the host, resolves it in
    DNS and prints it in its error (``host 'Secret99@127.0.0.1'``)."""
    p = libpq_params(url)
    odd_host = any("@" in p.get(k, "") for k in ("host", "hostaddr", "port", "dbname", "user"))
    odd_port = any(not part.isdigit() for part in p.get("port", "").split(",") if part)
    if odd_host or odd_port or re.search(r"[@/?#\s]", _userinfo(url)):
        raise MailvoiceError(
            "the database URL cannot be read unambiguously: percent-encode '@', '/', '?', '#' and spaces in the "
            "user name and password (@ is %40, / is %2F)"
        )


def _url_password(url: str) -> str:
    try:
        p = urlsplit(url)
        pw = unquote(p.password or "")
        return pw or dict(parse_qsl(p.query)).get("password", "")
    except ValueError:
        m = re.match(r"^[a-z][a-z0-9+.-]*://[^:/@]*:([^/]*)@", url, flags=re.I)
        return unquote(m.group(1)) if m else ""


def _one_line(msg: str, secrets: Iterable[str] = ()) -> str:
    for s in secrets:
        if s and len(s) >= 4:  # shorter ones would garble the message, not protect anything
            msg = msg.replace(s, "***")
    return " ".join(part.strip() for part in msg.splitlines() if part.strip())


def _epoch(value: Any) -> float | None:
    """``Account.expires_at`` as epoch seconds: Int seconds (fork) or timestamp (upstream)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:  # Prisma DateTime = timestamp(3) without time zone, in UTC
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, (int, float, Decimal)):
        v = float(value)
        return v / 1000.0 if v > 1e11 else v  # milliseconds, defensively
    if isinstance(value, str) and value.strip().isdigit():
        return _epoch(int(value.strip()))
    return None


def _iso_utc(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def _default_parse() -> Callable[..., MailRecord]:
    try:
        from mailvoice.sources.parse import parse_message
    except ImportError as e:  # the parsing module ships separately
        raise MailvoiceError("the message parser (mailvoice.sources.parse) is not available") from e
    return parse_message


def fetch_in_order(client: GmailClient, refs: Iterable[MessageRef], concurrency: int) -> Iterator[tuple]:
    """(ref, raw-or-None) in list order, ``concurrency`` fetches in flight: a bounded window, so a
    slow consumer holds at most that many messages in memory (bench/emailai_fetch.py)."""
    if concurrency <= 1:
        for ref in refs:
            yield ref, client.get_raw(ref.id)
        return
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="gmail-get")
    window: deque = deque()
    try:
        for ref in refs:
            window.append((ref, pool.submit(client.get_raw, ref.id)))
            if len(window) >= concurrency:
                r, fut = window.popleft()
                yield r, fut.result()
        while window:
            r, fut = window.popleft()
            yield r, fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class EmailAISource(Source):
    """Iterator over the user's sent mail as :class:`MailRecord` objects (streams)."""

    def __init__(
        self,
        db_url: str,
        user_id: str,
        *,
        encrypt_secret: str | None = None,
        encrypt_salt: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        gmail_api_base: str | None = None,
        token_url: str | None = None,
        query: str = "in:sent",
        accounts: Iterable[str] | None = None,
        include_draftsendlog: bool = True,
        limit: int | None = None,
        page_size: int = _PAGE,
        max_tries: int = 5,
        concurrency: int = 8,
        backoff_base: float = 0.5,
        backoff_max: float = 32.0,
        http_timeout: float = 60.0,
        connect_timeout: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        parse: Callable[..., MailRecord] | None = None,
        env: Mapping[str, str] | None = None,
    ):
        if not db_url:
            raise MailvoiceError("no EmailAI database URL given (postgresql://… or DATABASE_URL)")
        if not user_id or not str(user_id).strip():
            raise MailvoiceError("which EmailAI user? give their User.id or e-mail address")
        self._env = os.environ if env is None else env
        self._db_url, self._schema = prepare_db_url(db_url)
        self._secrets = _url_secrets(db_url)
        self.db_display = redact_url(db_url)
        if "://" in db_url:
            _check_unambiguous(self._db_url)
        self.name = f"emailai:{self.db_display}"
        self.user_id = str(user_id).strip()
        self._secret = encrypt_secret
        self._salt = encrypt_salt
        self._client_id = client_id or self._env.get("GOOGLE_CLIENT_ID") or None
        self._client_secret = client_secret or self._env.get("GOOGLE_CLIENT_SECRET") or None
        self._api_base = (gmail_api_base or self._env.get("MAILVOICE_GMAIL_API_BASE")
                          or GMAIL_API_BASE).rstrip("/")
        self._token_url = (token_url or self._env.get("MAILVOICE_GOOGLE_TOKEN_URL")
                           or GOOGLE_TOKEN_URL)
        self._query = query
        self._only = {a.strip().lower() for a in accounts} if accounts else None
        self._include_dsl = include_draftsendlog
        self._limit = limit
        self._page = max(1, min(int(page_size), 500))
        self._max_tries = max_tries
        # Gmail allows 250 quota units per user per second (messages.get costs 5) and answers 429
        # "Too many concurrent requests for user" beyond its concurrency limit: a few at a time.
        self._concurrency = max(1, int(concurrency))
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._http_timeout = http_timeout
        self._connect_timeout = connect_timeout
        self._sleep = sleep
        self._parse = parse
        self.stats = EmailAIStats()

        self._conn = None
        self._columns: dict[str, dict[str, str]] | None = None
        self._user: tuple[str, str] | None = None  # (User.id, User.email)
        self._accounts: list[EmailAIAccount] | None = None
        self._all_account_emails: list[str] = []
        self._gen: Iterator[MailRecord] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"EmailAISource({self.db_display!r})"

    # -- public ------------------------------------------------------------------------------

    def user_emails(self) -> list[str]:
        """All addresses of the user: User.email first, then each EmailAccount.email."""
        self._load()
        assert self._user is not None and self._accounts is not None
        out: list[str] = []
        for e in [self._user[1], *self._all_account_emails]:
            e = (e or "").strip().lower()
            if e and e not in out:
                out.append(e)
        return out

    def accounts(self) -> list[EmailAIAccount]:
        self._load()
        assert self._accounts is not None
        return list(self._accounts)

    def signatures(self) -> dict[str, str]:
        """``{account address: signature}`` for accounts that have one stored."""
        return {a.email: a.signature for a in self.accounts() if a.signature}

    def __iter__(self) -> EmailAISource:
        return self

    def __next__(self) -> MailRecord:
        if self._gen is None:
            if self._closed:
                raise StopIteration
            self._gen = self._records()
        return next(self._gen)

    def close(self) -> None:
        self._closed = True
        if self._gen is not None:
            self._gen.close()
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def __enter__(self) -> EmailAISource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- database ----------------------------------------------------------------------------

    def _connect(self):
        if self._conn is not None:
            return self._conn
        try:
            import psycopg
            from psycopg import sql
        except ImportError as e:
            raise MailvoiceError("reading EmailAI needs psycopg: pip install 'psycopg[binary]'") from e
        try:
            conn = psycopg.connect(self._db_url, autocommit=True,
                                   connect_timeout=self._connect_timeout)
        except psycopg.Error as e:
            detail = _one_line(str(e), self._secrets)
            raise MailvoiceError(
                f"cannot connect to the EmailAI database at {self.db_display}: {detail}"
            ) from None
        except Exception as e:  # malformed URL and the like: the message may echo the URL
            raise MailvoiceError(
                f"cannot connect to the EmailAI database at {self.db_display}: {type(e).__name__}"
            ) from None
        try:
            conn.execute("SET default_transaction_read_only = on")
            if self._schema:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
        except psycopg.Error as e:
            conn.close()
            raise MailvoiceError(f"EmailAI database setup failed: {_one_line(str(e), self._secrets)}") from None
        self._conn = conn
        return conn

    def _query_all(self, query: str, params: tuple = ()) -> list[tuple]:
        import psycopg
        try:
            return self._connect().execute(query, params).fetchall()
        except psycopg.Error as e:
            first = (str(e).splitlines() or [""])[0]
            detail = _one_line(f"{type(e).__name__}: {first}", self._secrets)
            raise MailvoiceError(f"EmailAI database query failed: {detail}") from None

    def _schema_columns(self) -> dict[str, dict[str, str]]:
        if self._columns is None:
            rows = self._query_all(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
                (["User", "EmailAccount", "Account", "EmailMessage", "DraftSendLog",
                  "ExecutedAction", "ExecutedRule"],),
            )
            cols: dict[str, dict[str, str]] = {}
            for t, c, dt in rows:
                cols.setdefault(t, {})[c] = dt
            self._columns = cols
        return self._columns

    def _has(self, table: str, *columns: str) -> bool:
        cols = self._schema_columns().get(table)
        return cols is not None and all(c in cols for c in columns)

    def _load(self) -> None:
        if self._accounts is not None:
            return
        if not self._has("User", "id", "email"):
            raise MailvoiceError(
                f"{self.db_display} does not look like an EmailAI database (no \"User\" table"
                f"{' in schema ' + self._schema if self._schema else ''})"
            )
        self._user = self._resolve_user()
        accounts = self._load_accounts(self._user[0], self._user[1])
        self._all_account_emails = [a.email for a in accounts]
        if self._only is not None:
            accounts = [a for a in accounts if a.email.lower() in self._only]
            if not accounts:
                raise MailvoiceError("none of the requested accounts belongs to that EmailAI user")
        self._decrypt(accounts)
        self._accounts = accounts
        self.stats.accounts = len(accounts)

    def _resolve_user(self) -> tuple[str, str]:
        uid = self.user_id
        rows = self._query_all('SELECT "id", "email" FROM "User" WHERE "id" = %s', (uid,))
        if not rows and "@" in uid:
            rows = self._query_all(
                'SELECT "id", "email" FROM "User" WHERE lower("email") = lower(%s) ORDER BY "id"',
                (uid,),
            )
            if not rows and self._has("EmailAccount", "email", "userId"):
                rows = self._query_all(
                    'SELECT u."id", u."email" FROM "EmailAccount" ea '
                    'JOIN "User" u ON u."id" = ea."userId" '
                    'WHERE lower(ea."email") = lower(%s) ORDER BY u."id"',
                    (uid,),
                )
        if not rows:
            raise MailvoiceError("no EmailAI user with that id or e-mail address")
        if len({r[0] for r in rows}) > 1:
            raise MailvoiceError("that e-mail address matches several EmailAI users; give the User.id")
        return str(rows[0][0]), str(rows[0][1] or "")

    def _load_accounts(self, user_id: str, user_email: str) -> list[EmailAIAccount]:
        acct_cols = [c for c in ("provider", "access_token", "refresh_token", "expires_at")
                     if self._has("Account", c)]
        a_sel = ", ".join(f'a."{c}"' for c in acct_cols)
        if self._has("EmailAccount", "id", "email", "userId"):
            opt = [c for c in ("signature", "about", "writingStyle") if self._has("EmailAccount", c)]
            ea_sel = ", ".join(['ea."id"', 'ea."email"'] + [f'ea."{c}"' for c in opt])
            order = ('ea."createdAt", ea."id"' if self._has("EmailAccount", "createdAt")
                     else 'ea."id"')
            if self._has("EmailAccount", "accountId"):
                q = (f'SELECT {ea_sel}{", " + a_sel if a_sel else ""} FROM "EmailAccount" ea '
                     'LEFT JOIN "Account" a ON a."id" = ea."accountId" '
                     f'WHERE ea."userId" = %s ORDER BY {order}')
            else:  # very old layout: one Google Account per user
                q = (f'SELECT {ea_sel}{", " + a_sel if a_sel else ""} FROM "EmailAccount" ea '
                     'LEFT JOIN "Account" a ON a."userId" = ea."userId" AND a."provider" = \'google\' '
                     f'WHERE ea."userId" = %s ORDER BY {order}')
            names = ["id", "email", *opt, *acct_cols]
            rows = self._query_all(q, (user_id,))
        else:  # before EmailAccount existed, the User was the mailbox
            q = (f'SELECT u."id", u."email"{", " + a_sel if a_sel else ""} FROM "User" u '
                 'JOIN "Account" a ON a."userId" = u."id" WHERE u."id" = %s ORDER BY a."id"')
            names = ["id", "email", *acct_cols]
            rows = self._query_all(q, (user_id,))
        out = []
        for r in rows:
            d = dict(zip(names, r))
            out.append(EmailAIAccount(
                id=str(d["id"]) if d.get("id") is not None else None,
                email=str(d.get("email") or user_email).strip().lower(),
                provider=d.get("provider"),
                signature=d.get("signature"),
                about=d.get("about"),
                writing_style=d.get("writingStyle"),
                access_token=d.get("access_token"),
                refresh_token=d.get("refresh_token"),
                expires_at=_epoch(d.get("expires_at")),
            ))
        return out

    def _decrypt(self, accounts: list[EmailAIAccount]) -> None:
        if not any(a.access_token or a.refresh_token for a in accounts):
            return
        if self._secret and self._salt:
            secret, salt = self._secret, self._salt
        else:
            secret, salt = secret_and_salt_from_env(self._env)
        for a in accounts:
            a.access_token = decrypt_token(a.access_token, secret, salt)
            a.refresh_token = decrypt_token(a.refresh_token, secret, salt)

    # -- records -----------------------------------------------------------------------------
    #
    # ``_walk`` yields ("msg", account, ref, raw-or-None) for each listed Gmail message and
    # ("dsl", account, record) for each DraftSendLog text; the three public ways of reading
    # (``__next__``, ``iter_raw`` and ``records``) differ only in what they do with those.

    def _walk(self) -> Iterator[tuple]:
        self._load()
        assert self._accounts is not None
        if not self._accounts:
            log.warning("the EmailAI user has no connected mail accounts")
        emitted = 0
        try:
            for acct in self._accounts:
                if acct.provider and acct.provider != "google":
                    log.warning("skipping %s: provider %s is not supported (Gmail only)",
                                acct.email, acct.provider)
                    self.stats.accounts_skipped += 1
                    continue
                for item in self._walk_account(acct):
                    yield item
                    emitted += 1
                    if self._limit is not None and emitted >= self._limit:
                        return
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _walk_account(self, acct: EmailAIAccount) -> Iterator[tuple]:
        fetched_ids: set[str] = set()
        client = self._gmail_client(acct)
        try:
            if not acct.access_token or (
                acct.refresh_token and acct.expires_at is not None
                and acct.expires_at <= time.time() + _EXPIRY_MARGIN_S
            ):
                client.refresh()
            for ref, raw in fetch_in_order(client, self._message_refs(acct, client), self._concurrency):
                self.stats.listed += 1
                if raw is None:
                    self.stats.missing += 1
                    log.info("%s: message %s is gone from Gmail; skipped", acct.email, ref.id)
                else:
                    self.stats.fetched += 1
                    fetched_ids.add(ref.id)
                yield ("msg", acct, ref, raw)
            log.info("%s: found %d sent emails (Gmail in:sent %d, \"EmailMessage\" held %d, %d only there), read %d",
                     acct.email, self.stats.listed, self.stats.listed_gmail, self.stats.emailmessage_rows,
                     self.stats.hinted, self.stats.fetched)
            if self._include_dsl:
                for rec in self._draftsendlog_records(acct, fetched_ids):
                    yield ("dsl", acct, rec)
        finally:
            self.stats.token_refreshes += client.refresh_count
            client.close()

    @staticmethod
    def _finish(rec: MailRecord, ref: MessageRef, source: str) -> MailRecord:
        changes: dict[str, Any] = {}
        if ref.thread_id:
            changes["thread_id"] = f"gmail:{ref.thread_id}"
        if "SENT" not in rec.labels:
            changes["labels"] = (*rec.labels, "SENT")
        if rec.source != source:
            changes["source"] = source
        return replace(rec, **changes) if changes else rec

    def _records(self) -> Iterator[MailRecord]:
        """Every message parsed (no authorship filtering), then the DraftSendLog texts."""
        parse = self._parse or _default_parse()
        for item in self._walk():
            if item[0] == "dsl":
                yield item[2]
                continue
            _, acct, ref, raw = item
            if raw is None:
                continue
            source = f"emailai:{acct.email}"
            try:
                rec = parse(raw, source=source, labels=SENT_LABELS)
            except (MailvoiceError, ValueError, LookupError, UnicodeError) as e:
                self.stats.parse_failed += 1
                log.warning("%s: cannot parse message %s (%s); skipped",
                            acct.email, ref.id, type(e).__name__)
                continue
            yield self._finish(rec, ref, source)

    # ``Source`` interface (mailvoice.sources.base) ------------------------------------------

    def iter_raw(self) -> Iterator[RawMail]:
        """The Gmail messages' bytes (DraftSendLog texts have none: use ``records``)."""
        for item in self._walk():
            if item[0] != "msg":
                continue
            raw = item[3]
            if raw is None:
                yield RawMail(b"", SENT_LABELS, error="vanished")
            else:
                yield RawMail(raw, SENT_LABELS)

    def records(self, *, user_emails: frozenset[str], stats: SourceStats) -> Iterator[MailRecord]:
        """Parsed and filtered like every source, with Gmail thread ids, per-account
        ``source`` names, and the DraftSendLog texts (counted in ``seen``)."""
        from mailvoice.sources.filters import process_raw

        for item in self._walk():
            stats.seen += 1
            if item[0] == "dsl":
                rec = item[2]
                if not (rec.text and rec.text.strip()):
                    stats.drop("no_body")
                    continue
                yield rec
                continue
            _, acct, ref, raw = item
            if raw is None:
                stats.error("vanished")
                stats.drop("malformed")
                continue
            source = f"emailai:{acct.email}"
            rec = process_raw(raw, source=source, labels=SENT_LABELS,
                              user_emails=user_emails, stats=stats)
            if rec is not None:
                yield self._finish(rec, ref, source)

    def _gmail_client(self, acct: EmailAIAccount) -> GmailClient:
        return GmailClient(
            acct.access_token, acct.refresh_token,
            client_id=self._client_id, client_secret=self._client_secret,
            api_base=self._api_base, token_url=self._token_url,
            max_tries=self._max_tries, backoff_base=self._backoff_base,
            backoff_max=self._backoff_max, timeout=self._http_timeout, sleep=self._sleep,
            label=acct.email,
        )

    def _message_refs(self, acct: EmailAIAccount, client: GmailClient) -> Iterator[MessageRef]:
        """Every message of Gmail's ``in:sent`` (all pages), then the sent ``"EmailMessage"`` rows
        Gmail's list lacked (a hint: that table is a partial cache, never the list itself)."""
        listed: set[str] = set()
        self.stats.listed_from[acct.email] = "gmail"
        for ref in client.list_messages(self._query, page_size=self._page):
            if ref.id not in listed:
                listed.add(ref.id)
                self.stats.listed_gmail += 1
                yield ref
        if not (acct.id and self._has("EmailMessage", "id", "messageId", "threadId", "date",
                                      "sent", "draft", "emailAccountId")):
            return
        for ref in self._db_message_refs(acct.id):
            self.stats.emailmessage_rows += 1
            if ref.id not in listed:
                listed.add(ref.id)
                self.stats.hinted += 1
                self.stats.listed_from[acct.email] = "gmail+EmailMessage"
                yield ref

    def _db_message_refs(self, account_id: str) -> Iterator[MessageRef]:
        seen: set[str] = set()
        last: tuple | None = None
        base = ('SELECT "date", "id", "messageId", "threadId" FROM "EmailMessage" '
                'WHERE "emailAccountId" = %s AND "sent" = true AND "draft" = false ')
        while True:
            if last is None:
                rows = self._query_all(base + 'ORDER BY "date", "id" LIMIT %s',
                                       (account_id, self._page))
            else:
                rows = self._query_all(base + 'AND ("date", "id") > (%s, %s) '
                                       'ORDER BY "date", "id" LIMIT %s',
                                       (account_id, last[0], last[1], self._page))
            for date, rid, mid, tid in rows:
                if mid and mid not in seen:
                    seen.add(mid)
                    yield MessageRef(str(mid), str(tid) if tid else None)
            if len(rows) < self._page:
                return
            last = (rows[-1][0], rows[-1][1])

    def _draftsendlog_records(self, acct: EmailAIAccount, emitted_ids: set[str]) -> Iterator[MailRecord]:
        if not acct.id or not self._has("DraftSendLog", "id", "sentText", "createdAt"):
            return
        has_msg = self._has("DraftSendLog", "sentMessageId")
        cols = 'd."id", d."createdAt", d."sentText"' + (', d."sentMessageId"' if has_msg else ", NULL")
        if self._has("DraftSendLog", "emailAccountId"):
            tid = 'NULL'
            join = ""
            where = 'd."emailAccountId" = %s'
            if (self._has("DraftSendLog", "executedActionId")
                    and self._has("ExecutedAction", "id", "executedRuleId")
                    and self._has("ExecutedRule", "id", "threadId")):
                tid = 'r."threadId"'
                join = ('LEFT JOIN "ExecutedAction" a ON a."id" = d."executedActionId" '
                        'LEFT JOIN "ExecutedRule" r ON r."id" = a."executedRuleId" ')
        elif (self._has("DraftSendLog", "executedActionId")
              and self._has("ExecutedAction", "id", "executedRuleId")
              and self._has("ExecutedRule", "id", "emailAccountId", "threadId")):
            tid = 'r."threadId"'
            # Only ids are read from ExecutedAction: never its AI-written "content".
            join = ('JOIN "ExecutedAction" a ON a."id" = d."executedActionId" '
                    'JOIN "ExecutedRule" r ON r."id" = a."executedRuleId" ')
            where = 'r."emailAccountId" = %s'
        else:
            log.warning("\"DraftSendLog\" exists but cannot be tied to an account; skipped")
            return
        base = (f'SELECT {cols}, {tid} FROM "DraftSendLog" d {join}'
                f'WHERE {where} AND d."sentText" IS NOT NULL AND d."sentText" <> \'\' ')
        last: tuple | None = None
        while True:
            if last is None:
                rows = self._query_all(base + 'ORDER BY d."createdAt", d."id" LIMIT %s',
                                       (acct.id, self._page))
            else:
                rows = self._query_all(base + 'AND (d."createdAt", d."id") > (%s, %s) '
                                       'ORDER BY d."createdAt", d."id" LIMIT %s',
                                       (acct.id, last[0], last[1], self._page))
            for did, created, text, sent_mid, thread in rows:
                if sent_mid and str(sent_mid) in emitted_ids:
                    self.stats.draftsendlog_duplicates += 1
                    continue
                mid = f"draftsendlog:{did}"
                self.stats.draftsendlog += 1
                yield MailRecord(
                    message_id=mid,
                    thread_id=f"gmail:{thread}" if thread else mid,
                    date=_iso_utc(created),
                    from_addr=acct.email,
                    subject="",
                    text=str(text),
                    source=f"emailai:{acct.email}",
                    labels=DRAFTSENDLOG_LABELS,
                )
            if len(rows) < self._page:
                return
            last = (rows[-1][1], rows[-1][0])


# -- registration --------------------------------------------------------------------------------

_SCHEMES = ("postgresql://", "postgres://")
ENV_USER = "MAILVOICE_EMAILAI_USER"


def parse_spec(spec: str, env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """``(db_url, user)`` from ``postgresql://…[#user]``, ``emailai:<user>`` or
    ``emailai:postgresql://…``; ``emailai:`` alone uses ``DATABASE_URL``."""
    env = os.environ if env is None else env
    spec = spec.strip()
    user = None
    if spec.lower().startswith("emailai:"):
        rest = spec[len("emailai:"):]
        if rest.lower().startswith(_SCHEMES):
            spec = rest
        else:
            rest = rest.lstrip("/")
            return env.get("DATABASE_URL") or None, (unquote(rest) or None)
    if spec.lower().startswith(_SCHEMES):
        if "#" in spec:
            spec, frag = spec.split("#", 1)
            user = unquote(frag) or None
        return spec, user
    raise MailvoiceError("an EmailAI source is postgresql://…, postgres://… or emailai:<user>")


def open_emailai(spec: str, **opts: Any) -> EmailAISource:
    """Entry point for ``open_source``: ``postgresql://``, ``postgres://`` and ``emailai:``.

    The user (User.id or e-mail) comes from ``user``/``user_id``, else the spec
    (``postgresql://…#<user>`` or ``emailai:<user>``), else ``$MAILVOICE_EMAILAI_USER``. The
    database is the spec's URL, else ``db_url``, else ``$DATABASE_URL`` (EmailAI's own variable).
    Secrets come from the environment (``GOOGLE_ENCRYPT_SECRET``/``_SALT``, ``GOOGLE_CLIENT_ID``/
    ``_SECRET``); ``MAILVOICE_GMAIL_API_BASE``/``MAILVOICE_GOOGLE_TOKEN_URL`` point at a fake.
    Other keywords go to :class:`EmailAISource`; unknown ones are ignored.
    """
    env = opts.get("env")
    env = os.environ if env is None else env
    db_url, user = parse_spec(spec, env)
    db_url = opts.pop("db_url", None) or db_url
    user = opts.pop("user_id", None) or opts.pop("user", None) or user
    opts.pop("user", None)
    user = user or env.get(ENV_USER) or None
    if not db_url:
        raise MailvoiceError("no EmailAI database URL: give postgresql://… or set DATABASE_URL")
    if not user:
        raise MailvoiceError("which EmailAI user? give their User.id or e-mail address")
    import inspect
    accepted = set(inspect.signature(EmailAISource.__init__).parameters) - {"self", "db_url", "user_id"}
    unknown = sorted(k for k in opts if k not in accepted)
    if unknown:
        log.debug("open_emailai ignores options: %s", ", ".join(unknown))
    kwargs = {k: v for k, v in opts.items() if k in accepted}
    return EmailAISource(db_url, user, **kwargs)


#: what ``mailvoice.sources.open_source`` looks up (it passes the spec only)
open_source = open_emailai

__all__ = ["EmailAIAccount", "EmailAISource", "EmailAIStats", "open_emailai", "open_source", "parse_spec",
           "prepare_db_url", "redact_url"]
