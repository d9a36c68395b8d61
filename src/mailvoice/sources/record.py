"""The one normalised record every source emits and the cleaning stage reads.

Stored one JSON object per line in ``<user>/data/records.jsonl``. Field meanings:

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
