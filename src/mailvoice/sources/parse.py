"""One raw RFC 5322 message → ``MailRecord``, with the stdlib ``email`` package (policy.default).

No hand-written MIME: structure, transfer encodings and RFC 2047 words are the email package's
job. What is done here is choosing and decoding the bodies, and reading the few headers the
record needs from their raw values (cheap, and robust against header-parser corner cases).
Attachments are never decoded: ``get_body`` skips them and nothing else touches their payload.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from datetime import UTC
from email import policy, utils
from email.feedparser import BytesFeedParser
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import EmailPolicy

from mailvoice.controls import strip_controls
from mailvoice.errors import MailvoiceError
from mailvoice.sources.record import MailRecord, SourceStats


class BadMessage(MailvoiceError):
    """Input that is not a message at all. ``reason`` is a short code for the stats."""

    def __init__(self, reason: str):
        super().__init__(f"unparsable message ({reason})")
        self.reason = reason


#: Header caps, checked before parsing: the stdlib header parser is superlinear in a field's
#: length (a 370 KB Subject of encoded words took 14 s, a 618 KB Content-Type with many
#: parameters 31 s), and that was paid even for mail dropped later. Real headers are far below:
#: a long Received chain is ~20 KB, a Content-Type a few hundred bytes.
MAX_HEADER_BYTES = 256 * 1024  # the top-level header block
MAX_HEADER_FIELDS = 1000  # fields in it
MAX_FIELD_BYTES = 32 * 1024  # one field (folded lines together), in any MIME part

_FIELD_START = re.compile(rb"^[^ \t\r\n]", re.MULTILINE)
_BLANK_LINE = re.compile(rb"\n\r?\n")


def header_problem(raw: bytes) -> str | None:
    """Why the top-level header block must not be parsed (a ``SKIP_REASONS`` code), or None.
    Bytes only, linear: the block ends at the first blank line."""
    m = _BLANK_LINE.search(raw, 0, MAX_HEADER_BYTES + 3)
    if m is None and len(raw) > MAX_HEADER_BYTES:
        return "header_too_large"
    block = raw[: m.start() + 1] if m else raw
    if len(block) <= MAX_FIELD_BYTES and block.count(b"\n") <= MAX_HEADER_FIELDS:
        return None  # the common case: no field can be longer than the block
    starts = [f.start() for f in _FIELD_START.finditer(block)]
    if len(starts) > MAX_HEADER_FIELDS:
        return "too_many_headers"
    starts.append(len(block))
    if any(b - a > MAX_FIELD_BYTES for a, b in zip(starts, starts[1:], strict=False)):
        return "header_field_too_large"
    return None


class _FieldTooLarge(Exception):
    """Raised from inside the feedparser (any MIME part) for a field over ``MAX_FIELD_BYTES``."""


# Only MIME headers recur; memoising Subject & co. would just hold parse trees for nothing.
_MEMO_HEADERS = frozenset({"content-type", "content-disposition", "content-transfer-encoding", "mime-version"})


@functools.lru_cache(maxsize=512)
def _fetch_header(name: str, value: str):
    return policy.default.header_fetch_parse(name, value)


class _MemoPolicy(EmailPolicy):
    """``policy.default`` with its header parsing memoised.

    ``policy.default`` re-parses a header every time it is read, and the feedparser and
    ``get_body`` read Content-Type several times per part: that was half the ingest time. The
    parsed header objects are read-only and depend only on (name, value), and the same
    Content-Type values recur across a mailbox, so a small bounded LRU (a few MB at most)
    makes it cheap. Behaviour is otherwise exactly ``policy.default``'s."""

    def header_source_parse(self, sourcelines):
        if sum(map(len, sourcelines)) > MAX_FIELD_BYTES:  # nested parts' headers too
            raise _FieldTooLarge
        return super().header_source_parse(sourcelines)

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name"):
            return value
        if name.lower() not in _MEMO_HEADERS:
            return super().header_fetch_parse(name, value)
        try:
            return _fetch_header(name, value)
        except TypeError:  # unhashable: never for parsed input, but keep the stdlib path
            return super().header_fetch_parse(name, value)


POLICY = _MemoPolicy()
# Any one of these makes a header block look like mail rather than arbitrary text.
_MAIL_HEADERS = frozenset({"from", "to", "cc", "subject", "date", "message-id", "received", "sender", "return-path"})
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_WS = re.compile(r"\s+")
_SURROGATES = re.compile("[\udc80-\udcff]")
_FEED_CHUNK = 1 << 20


def parse_bytes(raw: bytes) -> EmailMessage:
    """Parse with the email package; raise ``BadMessage`` only for hopeless input.

    Big messages are fed to the feedparser in 1 MiB pieces: ``parsebytes`` would first decode
    the whole message to one str and split it into one list of lines, which for a 50 MB
    attachment tripled peak memory."""
    if not raw or not raw.strip():
        raise BadMessage("empty")
    problem = header_problem(raw)
    if problem:
        raise BadMessage(problem)
    try:
        parser = BytesFeedParser(policy=POLICY)
        if len(raw) <= _FEED_CHUNK:
            parser.feed(raw)
        else:
            view = memoryview(raw)
            for i in range(0, len(raw), _FEED_CHUNK):
                parser.feed(bytes(view[i : i + _FEED_CHUNK]))
        msg = parser.close()
    except _FieldTooLarge:
        raise BadMessage("header_field_too_large") from None
    except Exception:  # noqa: BLE001 - the feedparser is tolerant; anything escaping it is hopeless input
        raise BadMessage("parser_error") from None
    names = {k.lower() for k in msg}  # header names
    if not names:
        raise BadMessage("no_headers")
    if not names & _MAIL_HEADERS:
        raise BadMessage("not_mail")
    return msg


class RawHeaders:
    """The message's headers as stored by the parser (undecoded), looked up by lower-cased name."""

    __slots__ = ("_d",)

    def __init__(self, msg: EmailMessage):
        d: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            d.setdefault(name.lower(), []).append(str(value))
        self._d = d

    def __contains__(self, name: str) -> bool:
        return name in self._d

    def get(self, name: str) -> str | None:
        v = self._d.get(name)
        return clean_header(v[0]) if v else None

    def get_all(self, name: str) -> list[str]:
        return [clean_header(v) for v in self._d.get(name, ())]


def _fix_surrogates(s: str) -> str:
    """Undo the parser's surrogateescape of raw 8-bit bytes: UTF-8 first, else cp1252."""
    if not _SURROGATES.search(s):
        return s
    b = s.encode("utf-8", "surrogateescape")
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("cp1252", "replace")


def clean_header(value: str) -> str:
    """Unfold a raw header value and repair raw 8-bit bytes in it (RFC 2047 words are kept)."""
    return strip_controls(_fix_surrogates(_FOLD.sub("", value))).strip()


def decode_words(s: str) -> str:
    """Decode RFC 2047 encoded words; leave the text as it is if they are broken."""
    if "=?" not in s:
        return s
    try:
        return strip_controls(_fix_surrogates(str(make_header(decode_header(s)))))
    except Exception:  # noqa: BLE001
        return s


def addresses(values: Sequence[str]) -> list[tuple[str, str]]:
    """``(display name, lower-cased address)`` pairs from raw address header values."""
    out = []
    for name, addr in utils.getaddresses(list(values)):
        addr = addr.strip().lower()
        if addr:
            out.append((decode_words(name).strip(), addr))
    return out


def from_address(h: RawHeaders) -> tuple[str, str]:
    """``(address, display name)`` of the From header, ``("", "")`` when there is none."""
    pairs = addresses(h.get_all("from")[:1])
    if not pairs:
        return "", ""
    name, addr = pairs[0]
    return addr, name


def gmail_labels(h: RawHeaders) -> tuple[str, ...]:
    """Google Takeout's ``X-Gmail-Labels: Inbox,Sent,"A, b"`` → labels (RFC 2047 decoded)."""
    value = h.get("x-gmail-labels")
    if not value:
        return ()
    labels, cur, quoted = [], [], False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            labels.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    labels.append("".join(cur))
    return tuple(x for x in (decode_words(label.strip()) for label in labels) if x)


def merge_labels(*groups: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for g in groups:
        for label in g:
            seen.setdefault(label, None)
    return tuple(seen)


def _one_id(value: str | None) -> str | None:
    if not value:
        return None
    m = _ANGLE_ID.search(value)
    ident = _WS.sub("", m.group(1)) if m else ""
    if not ident and not m:
        # Some clients drop the brackets; accept one bare token that looks like an id.
        tok = value.strip()
        if tok and not _WS.search(tok) and "@" in tok:
            ident = tok
    return ident or None


def _ids(values: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        found = [_WS.sub("", x) for x in _ANGLE_ID.findall(v)]
        out.extend(x for x in found if x)
    return tuple(out)


def iso_date(value: str | None) -> str | None:
    """RFC 5322 date → ISO 8601 UTC (``2024-01-31T09:00:00+00:00``); None when unparsable."""
    if not value:
        return None
    try:
        dt = utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    try:
        if dt.tzinfo is None:  # "-0000": no zone information, taken as UTC
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC).isoformat(timespec="seconds")
    except (ValueError, OverflowError):
        return None


# Charset labels seen in real mail that Python's codec registry does not know or gets wrong.
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "x-mac-roman": "mac_roman",
    "x-user-defined": "cp1252",
    "iso-8859-1": "cp1252",  # what senders labelled latin-1 almost always is (as WHATWG does)
    "latin1": "cp1252",
    "us-ascii": "ascii",
    "unknown-8bit": "",
    "x-unknown": "",
    "unknown": "",
    "default": "",
    "charset": "",
}


def decode_text(data: bytes, charset: str | None, stats: SourceStats | None = None) -> str:
    """Bytes of a text part → str. Never raises: an unknown label or bytes that do not fit
    the label are decoded with ``errors="replace"`` and counted in ``stats.errors``."""
    label = (charset or "").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(label, label)
    if name in ("", "ascii"):
        # Undeclared, unknown-8bit or "us-ascii" with 8-bit bytes: UTF-8 (which contains ASCII)
        # is by far the likeliest, then the Windows code page.
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            if stats is not None:
                stats.error("charset_undecodable")
            return data.decode("cp1252", "replace")
    try:
        return data.decode(name)
    except LookupError:
        if stats is not None:
            stats.error("charset_unknown")
        return data.decode("utf-8", "replace")
    except UnicodeDecodeError:
        if name != "utf-8":
            try:
                return data.decode("utf-8")  # mislabelled UTF-8 is common
            except UnicodeDecodeError:
                pass
        if stats is not None:
            stats.error("charset_undecodable")
        return data.decode(name, "replace")
    except Exception:  # noqa: BLE001 - a codec that misbehaves on odd input
        if stats is not None:
            stats.error("charset_undecodable")
        return data.decode("utf-8", "replace")


def _part_text(part, stats: SourceStats | None) -> str | None:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        payload = None
    if payload is None:
        return None
    if not isinstance(payload, bytes):
        payload = str(payload).encode("utf-8", "surrogateescape")
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    # control characters and terminal escapes are never text: gone before anything stores it
    return strip_controls(decode_text(payload, charset, stats))


def bodies(msg: EmailMessage, stats: SourceStats | None = None) -> tuple[str | None, str | None]:
    """The text/plain and text/html bodies, attachments skipped (``EmailMessage.get_body``)."""
    text = html = None
    try:
        part = msg.get_body(preferencelist=("plain",))
        if part is not None:
            text = _part_text(part, stats)
        part = msg.get_body(preferencelist=("html",))
        if part is not None:
            html = _part_text(part, stats)
    except Exception:  # noqa: BLE001
        text = html = None
        if stats is not None:
            stats.error("mime_structure")
    if text is None and html is None and not msg.is_multipart():
        # A multipart/* whose boundary is missing or never appears: the email package keeps
        # the whole body as one string (and records a defect). That string is the best text.
        try:
            maintype = msg.get_content_maintype()
        except Exception:  # noqa: BLE001
            maintype = ""
        if maintype == "multipart":
            if stats is not None:
                stats.error("multipart_without_boundary")
            text = _part_text(msg, stats)
    return text, html


def message_id(h: RawHeaders, raw: bytes) -> str:
    return _one_id(h.get("message-id")) or "sha256:" + hashlib.sha256(raw).hexdigest()


def build_record(
    msg: EmailMessage,
    raw: bytes,
    *,
    source: str,
    labels: Sequence[str] = (),
    headers: RawHeaders | None = None,
    sender: tuple[str, str] | None = None,
    stats: SourceStats | None = None,
) -> MailRecord:
    """Build the record from an already-parsed message (the readers filter before this).
    ``headers`` and ``sender`` (``from_address``'s result) may be passed to avoid redoing them."""
    h = headers if headers is not None else RawHeaders(msg)
    mid = message_id(h, raw)
    refs = _ids(h.get_all("references"))
    irt = _one_id(h.get("in-reply-to"))
    thrid = h.get("x-gm-thrid")
    if thrid and thrid.isdigit():
        thread = f"gmail:{thrid}"
    else:
        thread = refs[0] if refs else (irt or mid)
    from_addr, from_name = sender if sender is not None else from_address(h)
    try:
        subj = msg["subject"]
        subject = strip_controls(_fix_surrogates(str(subj))) if subj is not None else ""
    except Exception:  # noqa: BLE001 - policy.default's header parser gave up: decode the raw value ourselves
        subject = decode_words(h.get("subject") or "")
    text, html = bodies(msg, stats)
    return MailRecord(
        message_id=mid,
        thread_id=thread,
        date=iso_date(h.get("date")),
        from_addr=from_addr,
        from_name=from_name,
        to=tuple(a for _, a in addresses(h.get_all("to"))),
        cc=tuple(a for _, a in addresses(h.get_all("cc"))),
        subject=_WS.sub(" ", subject).strip(),
        in_reply_to=irt,
        references=refs,
        text=text,
        html=html,
        source=source,
        labels=merge_labels(labels, gmail_labels(h)),
    )


def parse_message(
    raw: bytes,
    *,
    source: str,
    labels: Sequence[str] = (),
    stats: SourceStats | None = None,
) -> MailRecord:
    """Parse one message. Raises ``BadMessage`` for hopeless input; no filtering here.
    ``labels`` are merged with Takeout's ``X-Gmail-Labels``; charset trouble goes to ``stats``."""
    msg = parse_bytes(raw)
    return build_record(msg, raw, source=source, labels=labels, stats=stats)
