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

Why stdlib ``imaplib`` and not ``imapclient``: the few things imapclient would add here
(modified UTF-7 folder names, LIST/FETCH response parsing, an XOAUTH2 helper) are ~100 lines
below, and keeping the source dependency-free means no extra package in the install.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import imaplib
import ipaddress
import json
import logging
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from mailvoice.errors import MailvoiceError
from mailvoice.sources.base import MAX_MESSAGE_BYTES, RawMail, Source
from mailvoice.sources.parse import parse_message

log = logging.getLogger(__name__)

ENV_PASSWORD = "MAILVOICE_IMAP_PASSWORD"
ENV_PASSWORD_FILE = "MAILVOICE_IMAP_PASSWORD_FILE"
ENV_TOKEN = "MAILVOICE_IMAP_OAUTH_TOKEN"
ENV_TOKEN_FILE = "MAILVOICE_IMAP_OAUTH_TOKEN_FILE"

DEFAULT_BATCH = 100
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0
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
    ``user={user}\\x01auth=Bearer {token}\\x01\\x01`` (imaplib base64-encodes it).
    """
    if "\x01" in user or "\x01" in token:
        raise MailvoiceError("IMAP user or OAuth token contains a control character")
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


# --------------------------------------------------------------------------- mUTF-7


def encode_mutf7(name: str) -> str:
    """RFC 3501 §5.1.3 modified UTF-7 for mailbox names."""
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            b = base64.b64encode("".join(buf).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b.replace("/", ",") + "-")
            buf.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def decode_mutf7(name: str) -> str:
    def repl(m: re.Match) -> str:
        b = m.group(1)
        if not b:
            return "&"
        b = b.replace(",", "/")
        b += "=" * (-len(b) % 4)
        try:
            return base64.b64decode(b).decode("utf-16-be")
        except (binascii.Error, UnicodeDecodeError):
            return m.group(0)

    return re.sub(r"&([A-Za-z0-9+,]*)-", repl, name)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- LIST


@dataclass(frozen=True)
class Folder:
    name: str  # decoded (Unicode)
    raw: str  # as on the wire (modified UTF-7)
    flags: frozenset[str]  # lower-cased, e.g. {"\\sent", "\\hasnochildren"}
    delimiter: str | None

    @property
    def selectable(self) -> bool:
        return not ({"\\noselect", "\\nonexistent"} & self.flags)


_LIST_RE = re.compile(rb'\((?P<flags>[^)]*)\)\s+(?P<delim>"(?:\\.|[^"\\])*"|NIL)\s+(?P<name>.*)$', re.I)


def parse_list_response(data: Sequence) -> list[Folder]:
    folders: list[Folder] = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):  # name sent as a literal: (b'(...) "/" {n}', b'name')
            line, literal = item[0], item[1]
        else:
            line, literal = item, None
        m = _LIST_RE.match(line.strip())
        if not m:
            continue
        flags = frozenset(f.lower() for f in m.group("flags").decode("ascii", "replace").split())
        d = m.group("delim")
        delim = None if d.upper() == b"NIL" else _unquote(d)
        if literal is not None:
            raw = literal.decode("utf-8", "replace")
        else:
            n = m.group("name").strip()
            raw = _unquote(n) if n.startswith(b'"') else n.decode("utf-8", "replace")
        folders.append(Folder(decode_mutf7(raw), raw, flags, delim))
    return folders


def _unquote(b: bytes) -> str:
    s = b.decode("utf-8", "replace")
    if len(s) >= 2 and s[0] == s[-1] == '"':
        s = re.sub(r"\\(.)", r"\1", s[1:-1])
    return s


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
    """Atomic write (temp file in the same dir, fsync, rename), mode 0600."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise MailvoiceError(f"cannot write IMAP state file {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise MailvoiceError(f"cannot write IMAP state file {path}: {e.strerror}") from None
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


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
) -> imaplib.IMAP4:
    """Open the connection (TLS as the spec says); no login yet."""
    addr = f"{spec.host}:{spec.port}"
    ctx = ssl_context or ssl.create_default_context()
    try:
        if spec.scheme == "imaps":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                spec.host, spec.port, ssl_context=ctx, timeout=timeout
            )
        else:
            conn = imaplib.IMAP4(spec.host, spec.port, timeout=timeout)
            if spec.starttls:
                if "STARTTLS" not in conn.capabilities:
                    with contextlib.suppress(Exception):
                        conn.shutdown()
                    raise MailvoiceError(f"IMAP server {addr} does not offer STARTTLS")
                conn.starttls(ssl_context=ctx)
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
    except imaplib.IMAP4.error as e:
        raise MailvoiceError(f"IMAP server {addr} refused the connection: {_one_line(e)}") from None
    if spec.scheme == "imap" and not spec.starttls and not _is_loopback(spec.host):
        log.warning(
            "imap: connection to %s is not encrypted; use imaps:// or ?starttls=1", addr
        )
    return conn


def login(conn: imaplib.IMAP4, spec: ImapSpec, creds: _Credentials) -> None:
    failed = f"IMAP login failed for {spec.where}"
    if creds.kind == "xoauth2":
        return _login_xoauth2(conn, spec, creds)
    try:
        if creds.secret.isascii():
            if "LOGINDISABLED" in conn.capabilities:
                raise MailvoiceError(
                    f"{failed}: the server refuses plaintext login here; use imaps:// or ?starttls=1"
                )
            conn.login(spec.user, creds.secret)
        else:
            # imaplib sends LOGIN arguments as ASCII; SASL PLAIN carries UTF-8 (RFC 4616).
            blob = f"\0{spec.user}\0{creds.secret}".encode()
            conn.authenticate("PLAIN", lambda _challenge: blob)
    except MailvoiceError:
        raise
    except imaplib.IMAP4.abort:
        raise MailvoiceError(f"{failed}: the server closed the connection") from None
    except imaplib.IMAP4.error as e:
        raise MailvoiceError(f"{failed}{_reason(e, creds)}") from None
    except OSError as e:
        raise MailvoiceError(f"{failed}: {e.strerror or e}") from None


def _login_xoauth2(conn: imaplib.IMAP4, spec: ImapSpec, creds: _Credentials) -> None:
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
        conn.authenticate("XOAUTH2", respond)
    except imaplib.IMAP4.abort:
        raise MailvoiceError(f"{failed}: the server closed the connection") from None
    except imaplib.IMAP4.error as e:
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


def _check(typ: str, data, what: str) -> list:
    if typ != "OK":
        raise MailvoiceError(f"IMAP {what} failed: {_one_line(data[0] if data else typ)}")
    return data


def list_folders(conn: imaplib.IMAP4) -> list[Folder]:
    caps = set(conn.capabilities)
    if "SPECIAL-USE" in caps and "LIST-EXTENDED" in caps:
        # RFC 6154 §2: ask for the special-use attributes explicitly.
        typ, data = conn._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
        typ, data = conn._untagged_response(typ, data, "LIST")
    else:
        typ, data = conn.list('""', '"*"')
    _check(typ, data, "LIST")
    return parse_list_response(data)


def examine(conn: imaplib.IMAP4, folder: Folder | str) -> tuple[int, int | None, int]:
    """EXAMINE (read-only SELECT); return (uidvalidity, uidnext or None, exists)."""
    raw = folder.raw if isinstance(folder, Folder) else encode_mutf7(folder)
    typ, data = conn.select(_quote(raw), readonly=True)
    if typ != "OK":
        raise _FolderMissing(_one_line(data[0] if data else typ))
    exists = int(data[0]) if data and data[0] and data[0].isdigit() else 0
    uidvalidity = _int_response(conn, "UIDVALIDITY")
    uidnext = _int_response(conn, "UIDNEXT")
    if uidvalidity is None:
        typ, data = conn.status(_quote(raw), "(UIDVALIDITY UIDNEXT)")
        if typ == "OK" and data and data[0]:
            line = data[0] if isinstance(data[0], bytes) else data[0][0]
            m = re.search(rb"UIDVALIDITY (\d+)", line)
            uidvalidity = int(m.group(1)) if m else None
            m = re.search(rb"UIDNEXT (\d+)", line)
            uidnext = int(m.group(1)) if m else uidnext
    if uidvalidity is None:
        raise MailvoiceError("IMAP server sent no UIDVALIDITY; cannot read incrementally")
    return uidvalidity, uidnext, exists


class _FolderMissing(Exception):
    pass


def _int_response(conn: imaplib.IMAP4, code: str) -> int | None:
    _, data = conn.response(code)
    for item in reversed(data or []):
        if item and item.strip().isdigit():
            return int(item)
    return None


_UID_RE = re.compile(rb"\bUID (\d+)", re.I)
_SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.I)


def new_uids(conn: imaplib.IMAP4, last_uid: int) -> list[tuple[int, int]]:
    """(uid, size) of every message with UID > last_uid, ascending.

    FETCH rather than SEARCH: one response line per message, so a huge folder never hits
    imaplib's line-length limit. ``N:*`` also matches the highest UID when it is below N,
    hence the filter.
    """
    typ, data = conn.uid("FETCH", f"{last_uid + 1}:*", "(UID RFC822.SIZE)")
    _check(typ, data, "FETCH")
    out: dict[int, int] = {}
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        if not line:
            continue
        m = _UID_RE.search(line)
        if not m:
            continue
        uid = int(m.group(1))
        if uid > last_uid:
            s = _SIZE_RE.search(line)
            out[uid] = int(s.group(1)) if s else 0
    return sorted(out.items())


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


def uid_set(uids: Sequence[int]) -> str:
    """Compress ascending UIDs into an IMAP sequence set: 1:3,7,9:10."""
    parts: list[str] = []
    start = prev = None
    for u in uids:
        if prev is not None and u == prev + 1:
            prev = u
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = u
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(parts)


def fetch_bodies(conn: imaplib.IMAP4, uids: Sequence[int]) -> dict[int, bytes]:
    """UID -> raw RFC 5322 bytes, via BODY.PEEK[] (does not set \\Seen)."""
    typ, data = conn.uid("FETCH", uid_set(uids), "(UID BODY.PEEK[])")
    _check(typ, data, "FETCH")
    out: dict[int, bytes] = {}
    pending: bytes | None = None  # body whose UID comes after the literal
    for item in data:
        if isinstance(item, tuple):
            head, body = item[0], item[1]
            m = _UID_RE.search(head)
            if m:
                out[int(m.group(1))] = body
                pending = None
            else:
                pending = body
        elif isinstance(item, bytes) and pending is not None:
            m = _UID_RE.search(item)
            if m:
                out[int(m.group(1))] = pending
            pending = None
    return out


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
        conn = connect(spec, timeout=self.timeout, ssl_context=self.ssl_context)
        try:
            login(conn, spec, self._creds)
            try:
                yield from self._read(conn)
            except imaplib.IMAP4.abort as e:
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
            except imaplib.IMAP4.error as e:
                raise MailvoiceError(f"IMAP error from {addr}: {_one_line(e)}") from None
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def _read(self, conn: imaplib.IMAP4) -> Iterator[RawMail]:
        spec = self.spec
        folder, uidvalidity, uidnext = _open_folder(conn, spec)
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
            todo = new_uids(conn, last_uid)
        log.info("imap: %d new message(s) in %s", len(todo), self.name)
        if not todo:
            commit(last_uid)  # records uidvalidity for a fresh or reset folder
            return
        too_large = {uid for uid, size in todo if size > self.max_message_bytes}
        for batch in batches(
            todo, count=self.batch_size, max_bytes=self.batch_bytes, skip=too_large
        ):
            fetch = [uid for uid in batch if uid not in too_large]
            bodies = fetch_bodies(conn, fetch) if fetch else {}
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


def _open_folder(conn: imaplib.IMAP4, spec: ImapSpec) -> tuple[str, int, int | None]:
    """Find and EXAMINE the folder; return (name, uidvalidity, uidnext)."""
    if spec.folder is None:
        folders = list_folders(conn)
        chosen = pick_sent_folder(folders)
        if chosen is None:
            raise MailvoiceError(
                f"no sent-mail folder on {spec.host} (none flagged \\Sent, none named like "
                f"Sent); name one: imap://{spec.user}@{spec.host}/FOLDER "
                f"(available: {_folder_names(folders)})"
            )
        log.info("imap: using sent folder %r on %s", chosen.name, spec.host)
        target: Folder | str = chosen
        name = chosen.name
    else:
        target = name = spec.folder
    try:
        uidvalidity, uidnext, _ = examine(conn, target)
    except _FolderMissing:
        folders = list_folders(conn)
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
