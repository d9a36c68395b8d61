"""Read sent mail from an IMAP server, incrementally by UID.

Specs::

    imap://user@host[:port]/Folder           plain IMAP (port 143); add ?starttls=1 for STARTTLS
    imaps://user@host[:port]/Folder          implicit TLS (port 993)
    imaps://me@gmail.com@imap.gmail.com/     no folder: the \\Sent special-use folder (RFC 6154)

The user may contain ``@`` (the last ``@`` separates the host) or be percent-encoded; the
folder is the rest of the path (``/`` inside it is kept: ``[Gmail]/Sent Mail``), percent-
encoding allowed. Query options: ``starttls=1``, ``auth=password|xoauth2`` (default: xoauth2
when a token is configured, else password), ``batch=N`` (messages per FETCH).

Secrets never go in the spec, argv, logs or messages. They come from the environment:
``MAILVOICE_IMAP_PASSWORD`` or ``MAILVOICE_IMAP_PASSWORD_FILE`` (LOGIN, or AUTHENTICATE PLAIN
for non-ASCII passwords), or ``MAILVOICE_IMAP_OAUTH_TOKEN`` / ``MAILVOICE_IMAP_OAUTH_TOKEN_FILE``
(an OAuth 2 access token, sent with AUTHENTICATE XOAUTH2 as Gmail and Outlook want it).

Incremental state: with ``state_path``, a JSON file (written atomically, mode 0600) keeps
``{"uidvalidity", "last_uid"}`` per ``user@host/folder``; a run fetches only UIDs above
``last_uid`` and a changed UIDVALIDITY starts the folder over. The folder is opened with
EXAMINE and bodies fetched with ``BODY.PEEK[]``, so nothing is marked \\Seen.

The protocol is ``imapclient``'s (modified UTF-7 folder names, LIST/SELECT/SEARCH/FETCH
parsing, SASL); what stays here is ours: the spec, where secrets come from, which folder is the
sent one, the UID state and the batching.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mailvoice.errors import MailvoiceError
from mailvoice.sources.base import MAX_MESSAGE_BYTES, RawMail, Source
from mailvoice.sources.parse import parse_message
from mailvoice.workspace import atomic_open

log = logging.getLogger(__name__)

ENV_PASSWORD = "MAILVOICE_IMAP_PASSWORD"
ENV_PASSWORD_FILE = "MAILVOICE_IMAP_PASSWORD_FILE"
ENV_TOKEN = "MAILVOICE_IMAP_OAUTH_TOKEN"
ENV_TOKEN_FILE = "MAILVOICE_IMAP_OAUTH_TOKEN_FILE"

DEFAULT_BATCH = 100
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0
# UIDs per SEARCH: the answer is one line, and imaplib refuses lines over 1 MB (50,000 UIDs of
# up to ten digits stay under half of that).
UID_WINDOW = 50_000
SIZE_CHUNK = 1000  # UIDs per FETCH of sizes
STATE_VERSION = 1

# Tried in order (case-insensitively) when no folder carries the \Sent special-use flag.
FALLBACK_SENT_NAMES = (
    "Sent",
    "Sent Items",
    "Sent Messages",
    "Sent Mail",
    "INBOX.Sent",
    "INBOX/Sent",
    "INBOX.Sent Items",
    "INBOX.Sent Messages",
    "[Gmail]/Sent Mail",
    "[Google Mail]/Sent Mail",
)

Parser = Callable[..., object]


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class ImapSpec:
    scheme: str  # "imap" or "imaps"
    user: str
    host: str
    port: int
    folder: str | None
    starttls: bool = False
    auth: str | None = None  # "password", "xoauth2" or None (auto)
    batch: int | None = None

    @property
    def where(self) -> str:
        """``user@host`` for messages (never a secret)."""
        return f"{self.user}@{self.host}"


def parse_spec(spec: str) -> ImapSpec:
    """Parse ``imap[s]://user@host[:port][/Folder][?opts]``; raise MailvoiceError if bad."""
    try:
        parts = urlsplit(spec)
    except ValueError as e:
        raise MailvoiceError(f"bad IMAP spec: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("imap", "imaps"):
        raise MailvoiceError("IMAP spec must start with imap:// or imaps://")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or not userinfo:
        raise MailvoiceError(
            "IMAP spec needs a user: imap://user@host/Folder (the password goes in "
            f"{ENV_PASSWORD} or {ENV_PASSWORD_FILE})"
        )
    if ":" in userinfo:
        # Never echo it: the part after ':' is probably a password.
        raise MailvoiceError(
            f"do not put a password in the IMAP spec; set {ENV_PASSWORD} or {ENV_PASSWORD_FILE}"
        )
    user = unquote(userinfo)
    try:
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        raise MailvoiceError("bad port in IMAP spec") from None
    if not host:
        raise MailvoiceError("IMAP spec needs a host: imap://user@host/Folder")
    folder = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    folder = folder or None

    opts = {k.lower(): v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(opts) - {"starttls", "auth", "batch"}
    if unknown:
        raise MailvoiceError(f"unknown IMAP spec option(s): {', '.join(sorted(unknown))}")
    starttls = _truthy(opts.get("starttls", "0"), "starttls")
    if starttls and scheme == "imaps":
        raise MailvoiceError("starttls=1 is for imap://; imaps:// is already TLS")
    auth = opts.get("auth") or None
    if auth is not None:
        auth = auth.lower()
        if auth not in ("password", "xoauth2"):
            raise MailvoiceError("IMAP spec option auth must be password or xoauth2")
    batch = None
    if "batch" in opts:
        try:
            batch = int(opts["batch"])
        except ValueError:
            batch = 0
        if batch < 1:
            raise MailvoiceError("IMAP spec option batch must be a positive integer")
    return ImapSpec(
        scheme=scheme,
        user=user,
        host=host.lower(),
        port=port or (993 if scheme == "imaps" else 143),
        folder=folder,
        starttls=starttls,
        auth=auth,
        batch=batch,
    )


def _truthy(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise MailvoiceError(f"IMAP spec option {name} must be 0 or 1")


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class _Credentials:
    kind: str  # "password" | "xoauth2"
    secret: str = ""

    def __repr__(self) -> str:  # never show the secret in a traceback's locals or a log
        return f"_Credentials(kind={self.kind!r}, secret='***')"


def _read_secret(env: dict, var: str, file_var: str, what: str) -> str | None:
    value = env.get(var)
    path = env.get(file_var)
    if value and path:
        raise MailvoiceError(f"set only one of {var} and {file_var}")
    if value:
        return value
    if path:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except OSError as e:
            raise MailvoiceError(f"cannot read {what} file {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise MailvoiceError(f"{what} file {path} is not UTF-8 text") from None
        text = text.strip("\r\n")
        if not text:
            raise MailvoiceError(f"{what} file {path} is empty")
        return text
    return None


def resolve_credentials(
    spec: ImapSpec,
    *,
    env: dict | None = None,
    password: str | None = None,
    oauth_token: str | None = None,
) -> _Credentials:
    env = dict(os.environ if env is None else env)
    if password is None:
        password = _read_secret(env, ENV_PASSWORD, ENV_PASSWORD_FILE, "IMAP password")
    if oauth_token is None:
        oauth_token = _read_secret(env, ENV_TOKEN, ENV_TOKEN_FILE, "IMAP OAuth token")
    kind = spec.auth or ("xoauth2" if oauth_token else "password")
    if kind == "xoauth2":
        if not oauth_token:
            raise MailvoiceError(
                f"auth=xoauth2 needs an OAuth access token in {ENV_TOKEN} or {ENV_TOKEN_FILE}"
            )
        return _Credentials("xoauth2", oauth_token.strip())
    if not password:
        raise MailvoiceError(
            f"no IMAP password for {spec.where}: set {ENV_PASSWORD} or {ENV_PASSWORD_FILE} "
            f"(or an OAuth token in {ENV_TOKEN})"
        )
    return _Credentials("password", password)


def xoauth2_string(user: str, token: str) -> bytes:
    """The SASL XOAUTH2 initial client response, before base64.

    Google's and Microsoft's documented format:
    ``user={user}\\x01auth=Bearer {token}\\x01\\x01`` (imaplib base64-encodes it). Sent through
    imapclient's ``sasl_login`` rather than its ``oauth2_login``, which answers a failure
    challenge with the token again instead of the empty response Google documents.
    """
    if "\x01" in user or "\x01" in token:
        raise MailvoiceError("IMAP user or OAuth token contains a control character")
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


# --------------------------------------------------------------------------- LIST


@dataclass(frozen=True)
class Folder:
    name: str  # decoded (Unicode)
    flags: frozenset[str]  # lower-cased, e.g. {"\\sent", "\\hasnochildren"}
    delimiter: str | None

    @property
    def selectable(self) -> bool:
        return not ({"\\noselect", "\\nonexistent"} & self.flags)

    @classmethod
    def from_listing(cls, item: tuple) -> Folder:
        """One ``(flags, delimiter, name)`` of ``IMAPClient.list_folders``."""
        flags, delim, name = item
        return cls(_text(name), frozenset(_text(f).lower() for f in flags), _text(delim) if delim else None)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def pick_sent_folder(folders: Sequence[Folder]) -> Folder | None:
    """The \\Sent special-use folder, else the first common sent-folder name that exists."""
    usable = [f for f in folders if f.selectable]
    for f in usable:
        if "\\sent" in f.flags:
            return f
    by_name = {f.name.lower(): f for f in usable}
    for name in FALLBACK_SENT_NAMES:
        f = by_name.get(name.lower())
        if f:
            return f
    return None


def _folder_names(folders: Sequence[Folder], limit: int = 40) -> str:
    names = sorted({f.name for f in folders if f.selectable}, key=str.lower)
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


# --------------------------------------------------------------------------- state


def state_key(spec: ImapSpec, folder: str) -> str:
    return f"{spec.user}@{spec.host}/{folder}"


def load_state(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"version": STATE_VERSION, "folders": {}}
    except OSError as e:
        raise MailvoiceError(f"cannot read IMAP state file {path}: {e.strerror}") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("folders", {}), dict):
            raise ValueError
    except ValueError:
        raise MailvoiceError(
            f"IMAP state file {path} is damaged; delete it to fetch everything again"
        ) from None
    data.setdefault("folders", {})
    data["version"] = STATE_VERSION
    return data


def save_state(path: Path, data: dict) -> None:
    """Atomic, durable, 0600 (``workspace.atomic_open``); a failure is one clear error."""
    try:
        with atomic_open(Path(path)) as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
    except OSError as e:
        raise MailvoiceError(f"cannot write IMAP state file {path}: {e.strerror}") from None


# --------------------------------------------------------------------------- connection


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(
    spec: ImapSpec, *, timeout: float = DEFAULT_TIMEOUT, ssl_context: ssl.SSLContext | None = None
) -> IMAPClient:
    """Open the connection (TLS as the spec says); no login yet."""
    addr = f"{spec.host}:{spec.port}"
    ctx = ssl_context or ssl.create_default_context()
    try:
        client = IMAPClient(spec.host, spec.port, ssl=spec.scheme == "imaps", ssl_context=ctx, timeout=timeout)
        # imapclient turns imaplib's protocol trace on (to its DEBUG logger), whole messages
        # included; mail never goes to a log, and formatting 32 MB batches costs CPU. Off.
        client._imap.debug = 0
        if spec.starttls:
            if not client.has_capability("STARTTLS"):
                with contextlib.suppress(Exception):
                    client.shutdown()
                raise MailvoiceError(f"IMAP server {addr} does not offer STARTTLS")
            client.starttls(ctx)
    except MailvoiceError:
        raise
    except socket.gaierror:
        raise MailvoiceError(f"cannot resolve IMAP host {spec.host}") from None
    except ssl.SSLCertVerificationError as e:
        raise MailvoiceError(
            f"TLS certificate of IMAP server {addr} not trusted: {e.verify_message}"
        ) from None
    except ssl.SSLError as e:
        raise MailvoiceError(f"TLS with IMAP server {addr} failed: {e.reason or e}") from None
    except (TimeoutError, socket.timeout):
        raise MailvoiceError(f"IMAP server {addr} unreachable: timed out") from None
    except OSError as e:
        raise MailvoiceError(f"IMAP server {addr} unreachable: {e.strerror or e}") from None
    except IMAPClientError as e:
        raise MailvoiceError(f"IMAP server {addr} refused the connection: {_one_line(e)}") from None
    if spec.scheme == "imap" and not spec.starttls and not _is_loopback(spec.host):
        log.warning(
            "imap: connection to %s is not encrypted; use imaps:// or ?starttls=1", addr
        )
    return client


def login(client: IMAPClient, spec: ImapSpec, creds: _Credentials) -> None:
    failed = f"IMAP login failed for {spec.where}"
    if creds.kind == "xoauth2":
        return _login_xoauth2(client, spec, creds)
    try:
        if creds.secret.isascii():
            if client.has_capability("LOGINDISABLED"):
                raise MailvoiceError(
                    f"{failed}: the server refuses plaintext login here; use imaps:// or ?starttls=1"
                )
            client.login(spec.user, creds.secret)
        else:
            # LOGIN arguments go as ASCII; SASL PLAIN carries UTF-8 (RFC 4616).
            client.plain_login(spec.user, creds.secret)
    except MailvoiceError:
        raise
    except IMAPClientError as e:  # LoginError, also when the server hung up meanwhile
        raise MailvoiceError(f"{failed}{_reason(e, creds)}") from None
    except OSError as e:
        raise MailvoiceError(f"{failed}: {e.strerror or e}") from None


def _login_xoauth2(client: IMAPClient, spec: ImapSpec, creds: _Credentials) -> None:
    failed = f"IMAP XOAUTH2 login failed for {spec.where}"
    blob = xoauth2_string(spec.user, creds.secret)
    detail: list[str] = []

    def respond(challenge: bytes) -> bytes:
        if not detail and not challenge:
            detail.append("")
            return blob
        # A failure comes as a challenge with base64 JSON ({"status":"401",...}); answer empty
        # so the server finishes with a tagged NO (Google's documented flow).
        try:
            info = json.loads(challenge or b"{}")
            status = info.get("status")
            if status:
                detail.append(f"status {status}")
        except (ValueError, AttributeError):
            pass
        return b""

    try:
        client.sasl_login("XOAUTH2", respond)
    except IMAPClientError as e:
        reason = _reason(e, creds)
        extra = [d for d in detail if d]
        if extra:
            reason += f" ({', '.join(extra)}; the token may be expired or lack the mail scope)"
        raise MailvoiceError(f"{failed}{reason}") from None
    except OSError as e:
        raise MailvoiceError(f"{failed}: {e.strerror or e}") from None


def _one_line(e: object) -> str:
    text = e.decode("utf-8", "replace") if isinstance(e, bytes) else str(e)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return " ".join(text.split())[:300]


def _reason(e: Exception, creds: _Credentials) -> str:
    text = _one_line(e)
    if creds.secret and creds.secret in text:
        text = text.replace(creds.secret, "***")
    return f": {text}" if text else ""


def list_folders(client: IMAPClient) -> list[Folder]:
    """Every folder, with its flags. Dovecot, Gmail and Exchange put the RFC 6154 special-use
    flags (``\\Sent``) in a plain LIST answer; where a server does not, the names below are tried."""
    return [Folder.from_listing(item) for item in client.list_folders()]


def examine(client: IMAPClient, folder: str) -> tuple[int, int | None, int]:
    """EXAMINE (read-only SELECT); return (uidvalidity, uidnext or None, exists)."""
    try:
        info = client.select_folder(folder, readonly=True)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as e:
        raise _FolderMissing(_one_line(e)) from None
    uidvalidity, uidnext = info.get(b"UIDVALIDITY"), info.get(b"UIDNEXT")
    if uidvalidity is None:
        status = client.folder_status(folder, ["UIDVALIDITY", "UIDNEXT"])
        uidvalidity, uidnext = status.get(b"UIDVALIDITY"), status.get(b"UIDNEXT", uidnext)
    if uidvalidity is None:
        raise MailvoiceError("IMAP server sent no UIDVALIDITY; cannot read incrementally")
    return int(uidvalidity), int(uidnext) if uidnext is not None else None, int(info.get(b"EXISTS", 0))


class _FolderMissing(Exception):
    pass


def new_uids(client: IMAPClient, last_uid: int, uidnext: int | None = None) -> list[tuple[int, int]]:
    """(uid, size) of every message with UID > last_uid (and below ``uidnext``), ascending.

    SEARCHed in UID windows so no answer line outgrows imaplib's limit; ``N:*`` also matches
    the highest UID when it is below N, hence the filter.
    """
    found: set[int] = set()
    lo, top = last_uid + 1, (uidnext - 1 if uidnext is not None else None)
    while top is None or lo <= top:
        hi = None if top is None else min(lo + UID_WINDOW - 1, top)
        found.update(u for u in client.search(["UID", f"{lo}:{hi or '*'}"]) if u > last_uid)
        if hi is None:
            break
        lo = hi + 1
    uids = sorted(found)
    sizes: dict[int, int] = {}
    for i in range(0, len(uids), SIZE_CHUNK):
        for uid, data in client.fetch(uids[i:i + SIZE_CHUNK], ["RFC822.SIZE"]).items():
            sizes[uid] = int(data.get(b"RFC822.SIZE", 0))
    return [(uid, sizes.get(uid, 0)) for uid in uids]


def batches(
    uids: Sequence[tuple[int, int]], *, count: int, max_bytes: int, skip: frozenset | set = frozenset()
) -> Iterator[list[int]]:
    """Group (uid, size) into UID lists of at most ``count`` and about ``max_bytes``;
    UIDs in ``skip`` ride along without counting (they are not fetched)."""
    batch: list[int] = []
    size = 0
    for uid, n in uids:
        if uid in skip:
            n = 0
        if batch and (len(batch) >= count or size + n > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(uid)
        size += n
    if batch:
        yield batch


def fetch_bodies(client: IMAPClient, uids: Sequence[int]) -> dict[int, bytes]:
    """UID -> raw RFC 5322 bytes, via BODY.PEEK[] (does not set \\Seen)."""
    return {uid: data[b"BODY[]"] for uid, data in client.fetch(list(uids), ["BODY.PEEK[]"]).items()
            if b"BODY[]" in data}


# --------------------------------------------------------------------------- the source


def _default_parser() -> Parser:
    return parse_message


class ImapSource(Source):
    """One IMAP folder as a ``Source``.

    ``iter_raw()`` streams ``RawMail`` (labels = ``(folder,)``) for the pipeline's
    ``records()``; iterating the source itself streams ``parse_message`` results directly.
    ``name`` (the records' ``source``) is ``imap://host/Folder``; it is final once the folder
    is known, i.e. after the first item (with no folder in the spec it is a guess before).
    Each run connects afresh; the state file, if any, is updated after every batch.
    """

    def __init__(
        self,
        spec: ImapSpec,
        creds: _Credentials,
        *,
        state_path: Path | None = None,
        batch_size: int = DEFAULT_BATCH,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        parser: Parser | None = None,
    ):
        self.spec = spec
        self._creds = creds
        self.state_path = state_path
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.max_message_bytes = max_message_bytes
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._parser = parser
        self.folder: str | None = spec.folder
        self.name = f"imap://{spec.host}/{spec.folder or 'Sent'}"

    def __iter__(self) -> Iterator:
        parse = self._parser or _default_parser()
        for raw in self.iter_raw():
            if raw.error is not None:
                log.warning("imap: skipping a message in %s (%s)", self.name, raw.error)
                continue
            try:
                yield parse(raw.data, source=self.name, labels=raw.labels)
            except MailvoiceError as e:
                log.warning("imap: skipping an unparsable message in %s: %s", self.name, e)

    def iter_raw(self) -> Iterator[RawMail]:
        spec = self.spec
        addr = f"{spec.host}:{spec.port}"
        client = connect(spec, timeout=self.timeout, ssl_context=self.ssl_context)
        try:
            login(client, spec, self._creds)
            try:
                yield from self._read(client)
            except IMAPClientAbortError as e:
                raise MailvoiceError(
                    f"IMAP connection to {addr} lost ({_one_line(e)}); run again to continue"
                ) from None
            except (TimeoutError, socket.timeout):
                raise MailvoiceError(
                    f"IMAP server {addr} stopped answering (timed out); run again to continue"
                ) from None
            except OSError as e:  # includes ssl.SSLError
                raise MailvoiceError(
                    f"IMAP connection to {addr} failed ({getattr(e, 'strerror', None) or e}); "
                    "run again to continue"
                ) from None
            except IMAPClientError as e:
                raise MailvoiceError(f"IMAP error from {addr}: {_one_line(e)}") from None
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def _read(self, client: IMAPClient) -> Iterator[RawMail]:
        spec = self.spec
        folder, uidvalidity, uidnext = _open_folder(client, spec)
        self.folder = folder
        self.name = f"imap://{spec.host}/{folder}"
        labels = (folder,)

        state = load_state(self.state_path) if self.state_path else {"folders": {}}
        key = state_key(spec, folder)
        entry = state["folders"].get(key) or {}
        last_uid = int(entry.get("last_uid") or 0)
        if entry and entry.get("uidvalidity") != uidvalidity:
            log.warning(
                "imap: UIDVALIDITY of %s changed (%s -> %s); reading the folder from the start",
                self.name, entry.get("uidvalidity"), uidvalidity,
            )
            last_uid = 0

        def commit(uid: int) -> None:
            state["folders"][key] = {"uidvalidity": uidvalidity, "last_uid": uid}
            if self.state_path:
                save_state(self.state_path, state)

        if uidnext is not None and uidnext <= last_uid + 1:
            todo: list[tuple[int, int]] = []
        else:
            todo = new_uids(client, last_uid, uidnext)
        log.info("imap: %d new message(s) in %s", len(todo), self.name)
        if not todo:
            commit(last_uid)  # records uidvalidity for a fresh or reset folder
            return
        too_large = {uid for uid, size in todo if size > self.max_message_bytes}
        for batch in batches(
            todo, count=self.batch_size, max_bytes=self.batch_bytes, skip=too_large
        ):
            fetch = [uid for uid in batch if uid not in too_large]
            bodies = fetch_bodies(client, fetch) if fetch else {}
            for uid in batch:
                if uid in too_large:
                    yield RawMail(b"", labels, error="too_large")
                    continue
                raw = bodies.get(uid)
                if raw is None:  # expunged meanwhile
                    yield RawMail(b"", labels, error="vanished")
                    continue
                yield RawMail(raw, labels)
            # Everything in the batch has been handed out: remember it.
            commit(batch[-1])

    def __repr__(self) -> str:
        return f"<ImapSource {self.name}>"


def open_imap(
    spec: str,
    *,
    state_path: Path | str | None = None,
    password: str | None = None,
    oauth_token: str | None = None,
    env: dict | None = None,
    batch_size: int | None = None,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
    parser: Parser | None = None,
) -> ImapSource:
    """An ``ImapSource`` for ``imap[s]://user@host[:port][/Folder][?opts]``.

    The spec and the credentials are checked now (MailvoiceError); connecting, login and
    fetching happen as the source is iterated (``iter(src)`` -> MailRecords via
    ``parse_message``; ``src.iter_raw()`` -> RawMail; ``src.records(...)`` -> the pipeline).
    ``password`` / ``oauth_token`` override the environment; ``env`` replaces ``os.environ``
    for the lookup; ``ssl_context`` e.g. trusts a private CA; ``parser`` replaces
    ``parse_message`` for ``iter(src)``.
    """
    parsed = parse_spec(spec)
    creds = resolve_credentials(parsed, env=env, password=password, oauth_token=oauth_token)
    return ImapSource(
        parsed,
        creds,
        state_path=Path(state_path) if state_path is not None else None,
        batch_size=batch_size or parsed.batch or DEFAULT_BATCH,
        batch_bytes=batch_bytes,
        max_message_bytes=max_message_bytes,
        timeout=timeout,
        ssl_context=ssl_context,
        parser=parser,
    )


def _open_folder(client: IMAPClient, spec: ImapSpec) -> tuple[str, int, int | None]:
    """Find and EXAMINE the folder; return (name, uidvalidity, uidnext)."""
    if spec.folder is None:
        folders = list_folders(client)
        chosen = pick_sent_folder(folders)
        if chosen is None:
            raise MailvoiceError(
                f"no sent-mail folder on {spec.host} (none flagged \\Sent, none named like "
                f"Sent); name one: imap://{spec.user}@{spec.host}/FOLDER "
                f"(available: {_folder_names(folders)})"
            )
        log.info("imap: using sent folder %r on %s", chosen.name, spec.host)
        name = chosen.name
    else:
        name = spec.folder
    try:
        uidvalidity, uidnext, _ = examine(client, name)
    except _FolderMissing:
        folders = list_folders(client)
        # A case-insensitive match is a typo worth pointing out, not silently taking.
        near = [f.name for f in folders if f.selectable and f.name.lower() == name.lower()]
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise MailvoiceError(
            f"IMAP folder {name!r} not found on {spec.host}{hint} "
            f"(available: {_folder_names(folders)})"
        ) from None
    return name, uidvalidity, uidnext


def open_source(spec: str, **opts) -> ImapSource:
    """What ``mailvoice.sources.open_source`` calls for ``imap://`` / ``imaps://`` specs.

    Same as ``open_imap``; with only the spec (the dispatcher's call) there is no state file,
    so every run reads the whole folder (records are deduplicated by Message-ID downstream).
    Pass ``state_path=`` to read incrementally.
    """
    return open_imap(spec, **opts)
