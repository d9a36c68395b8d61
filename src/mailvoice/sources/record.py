"""The types every source stage shares: the normalised record every source emits and the cleaning
stage reads (``MailRecord``), the raw envelope a source yields (``RawMail``), the counters
(``SourceStats``). Nothing here imports another source module, so any of them can import it.

``MailRecord`` is stored one JSON object per line in ``<user>/data/records.jsonl``. Field meanings:

- ``message_id``: the RFC 5322 Message-ID without angle brackets; the dedupe key across
  sources. When a message has none, a ``sha256:<hex>`` of its raw bytes stands in.
- ``thread_id``: the first id in References, else In-Reply-To, else ``message_id``; a
  source that knows better (Gmail's threadId) puts its own, prefixed (``gmail:<id>``).
- ``date``: ISO 8601 in UTC, or ``None`` when the Date header is missing or unparsable.
- ``from_addr``: the lower-cased address of the From header; ``from_name`` its display name.
- ``to`` / ``cc``: lower-cased addresses.
- ``subject``: decoded, unfolded.
- ``in_reply_to`` / ``references``: ids without angle brackets.
- ``text``: the text/plain body decoded to str (``None`` when the message has only HTML).
- ``html``: the text/html body decoded to str, or ``None``.
- ``source``: which source produced it (``mbox:/path``, ``imap://host/Sent``, ``emailai:<account>``)
  with no secrets in it.
- ``labels``: source labels (Takeout's X-Gmail-Labels, IMAP folder), informational.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, fields

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class MailRecord:
    message_id: str
    thread_id: str
    date: str | None
    from_addr: str
    from_name: str = ""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    subject: str = ""
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    text: str | None = None
    html: str | None = None
    source: str = ""
    labels: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> MailRecord:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("to", "cc", "references", "labels"):
            if k in kw and kw[k] is not None:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    @classmethod
    def from_json(cls, line: str) -> MailRecord:
        return cls.from_dict(json.loads(line))


@dataclass
class SourceStats:
    """Counts for one ingest. ``seen == kept + sum(dropped.values())`` once a run is finished.

    ``dropped`` is keyed by reason (``not_from_user``, ``no_sent_label``, ``auto_submitted``, ``bulk``,
    ``calendar``, ``delivery_report``, ``chat``, ``duplicate``, ``malformed``, ``no_body``);
    ``errors`` counts problems met on the way, fatal to a message or not (``charset_unknown``,
    ``charset_undecodable``, ``parser_error``, …; the ``SKIP_REASONS`` codes such as
    ``not_regular_file`` or ``header_too_large`` say why a message was never parsed).
    """

    seen: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def error(self, code: str) -> None:
        self.errors[code] += 1

    def as_dict(self) -> dict:
        return {
            "seen": self.seen,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "errors": dict(sorted(self.errors.items())),
        }


@dataclass(frozen=True, slots=True)
class RawMail:
    """One message as a source read it. ``error`` is set (and ``data`` empty) when the source
    could not get the bytes (``too_large``, ``unreadable``, ``vanished``): the pipeline counts
    it as ``malformed`` and moves on."""

    data: bytes
    labels: tuple[str, ...] = ()
    error: str | None = None
