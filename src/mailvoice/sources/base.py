"""What every source shares: the counters, the raw-message envelope, the ``Source`` base class.

A source yields ``RawMail`` (the bytes of one RFC 5322 message plus the labels it knows); the
default ``Source.records`` parses each one, drops what the user did not author, and yields
``MailRecord``s. A source that already has structured data (a database) overrides ``records``.
"""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailvoice.sources.record import MailRecord

#: Messages larger than this are skipped (counted as ``malformed`` / ``too_large``) without
#: being held in memory: the readers stop buffering once a message passes it.
MAX_MESSAGE_BYTES = 128 * 1024 * 1024


@dataclass
class SourceStats:
    """Counts for one ingest. ``seen == kept + sum(dropped.values())`` once a run is finished.

    ``dropped`` is keyed by reason (``not_from_user``, ``auto_submitted``, ``bulk``,
    ``calendar``, ``delivery_report``, ``chat``, ``duplicate``, ``malformed``, ``no_body``);
    ``errors`` counts problems met on the way, fatal to a message or not (``charset_unknown``,
    ``charset_undecodable``, ``too_large``, ``unreadable``, ``parser_error``, …).
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


class Source(abc.ABC):
    """A place mail comes from. ``name`` goes into ``MailRecord.source``: never put secrets in it."""

    name: str = ""

    @abc.abstractmethod
    def iter_raw(self) -> Iterator[RawMail]:
        """Yield every message, streaming. Raise ``MailvoiceError`` if the source as a whole
        cannot be read; a single bad message is a ``RawMail`` with ``error`` set."""

    def records(self, *, user_emails: frozenset[str], stats: SourceStats) -> Iterator[MailRecord]:
        """Parse and filter ``iter_raw``; counts ``seen`` and every drop except ``duplicate``."""
        from mailvoice.sources.filters import process_raw

        for raw in self.iter_raw():
            stats.seen += 1
            if raw.error is not None:
                stats.error(raw.error)
                stats.drop("malformed")
                continue
            rec = process_raw(raw.data, source=self.name, labels=raw.labels, user_emails=user_emails, stats=stats)
            if rec is not None:
                yield rec

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
