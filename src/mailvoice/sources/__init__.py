"""Mail sources: turn mbox / Maildir / .eml / .pst (and, from other modules, IMAP and
email-ai databases) into a deduplicated stream of the user's own ``MailRecord``s.

    stats = SourceStats()
    for rec in read_sources(["~/Takeout/Mail/Sent.mbox"], user_emails=["me@example.com"], stats=stats):
        ...

A spec is a path (kind detected) or ``mbox:PATH``, ``maildir:PATH``, ``eml:PATH``, ``pst:PATH``;
``imap://…``, ``imaps://…``, ``emailai:…`` and ``postgresql://…`` go to modules that provide
``open_source(spec) -> Source`` (see ``_SCHEMES``).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from mailvoice.errors import MailvoiceError, NotAvailableYet
from mailvoice.sources.base import MAX_MESSAGE_BYTES, SKIP_REASONS, RawMail, Source, SourceStats, open_regular
from mailvoice.sources.eml import EmlSource
from mailvoice.sources.filters import DROP_REASONS, normalise_emails
from mailvoice.sources.jsonl import read_records, write_records
from mailvoice.sources.maildir import MaildirSource, is_maildir
from mailvoice.sources.mbox import MboxSource
from mailvoice.sources.parse import BadMessage, parse_message
from mailvoice.sources.pst import PstSource
from mailvoice.sources.record import MailRecord

__all__ = [
    "DROP_REASONS",
    "MAX_MESSAGE_BYTES",
    "BadMessage",
    "MailRecord",
    "RawMail",
    "SKIP_REASONS",
    "Source",
    "SourceStats",
    "open_source",
    "parse_message",
    "read_records",
    "read_sources",
    "write_records",
]


def _check_local(p: Path) -> None:
    """A local source must be a regular file or a folder: a FIFO would block, a device never end."""
    if not p.exists():
        raise MailvoiceError(f"no such file or folder: {p}")
    if not (p.is_file() or p.is_dir()):
        raise MailvoiceError(f"not a regular file or folder: {p}")


def _local(kind: str) -> Callable[[str], Source]:
    def factory(path: str) -> Source:
        p = Path(os.path.expanduser(path))
        _check_local(p)
        if kind == "mbox":
            return MboxSource(p)
        if kind == "maildir":
            return MaildirSource(p)
        if kind == "eml":
            return EmlSource(p)

        return PstSource(p)

    return factory


# Remote kinds live in other modules, imported only when used. Each module provides
# ``open_source(spec: str) -> Source`` and receives the whole spec.
_SCHEMES: dict[str, tuple[str, str]] = {
    "imap": ("mailvoice.sources.imap", "open_source"),
    "imaps": ("mailvoice.sources.imap", "open_source"),
    "emailai": ("mailvoice.sources.emailai_db", "open_source"),
    "postgresql": ("mailvoice.sources.emailai_db", "open_source"),
    "postgres": ("mailvoice.sources.emailai_db", "open_source"),
}
_LOCAL = {k: _local(k) for k in ("mbox", "maildir", "eml", "pst")}


def _remote(scheme: str, spec: str) -> Source:
    module, attr = _SCHEMES[scheme]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise NotAvailableYet(f"{scheme}: sources") from None
        raise
    factory = getattr(mod, attr, None)
    if factory is None:
        raise NotAvailableYet(f"{scheme}: sources")
    return factory(spec)


def _sniff(p: Path) -> str:
    """Which local kind a path is. Raises MailvoiceError when it cannot tell."""

    if p.is_dir():
        return "maildir" if is_maildir(p) else "eml"
    suffix = p.suffix.lower()
    if suffix in (".pst", ".ost"):
        return "pst"
    if suffix == ".mbox":
        return "mbox"
    if suffix == ".eml":
        return "eml"
    try:
        with open_regular(p) as f:
            head = f.read(4096)
    except OSError as e:
        raise MailvoiceError(f"cannot read {p}: {e.strerror or type(e).__name__}") from None
    if head.startswith(b"!BDN"):
        return "pst"
    if head.lstrip(b"\r\n").startswith(b"From "):
        return "mbox"
    first = head.split(b"\n", 1)[0]
    name = first.split(b":", 1)[0]
    if b":" in first and name and b" " not in name and name.isascii():
        return "eml"  # starts with a header line: a single message
    raise MailvoiceError(f"cannot tell what kind of mail source {p} is; prefix it with mbox:, maildir:, eml: or pst:")


def open_source(spec: str) -> Source:
    """A ``Source`` for a spec (see the module doc). Raises ``MailvoiceError`` for a missing
    path, an unknown kind, or a remote kind whose module is not there yet."""
    if not spec or not spec.strip():
        raise MailvoiceError("empty source spec")
    spec = spec.strip()
    head, sep, rest = spec.partition(":")
    scheme = head.lower()
    if sep and scheme in _LOCAL:
        return _LOCAL[scheme](rest)
    if sep and scheme in _SCHEMES and (rest.startswith("//") or scheme == "emailai"):
        return _remote(scheme, spec)
    if sep and rest.startswith("//"):
        raise MailvoiceError(f"unknown source kind {scheme}://")
    p = Path(os.path.expanduser(spec))
    _check_local(p)
    return _LOCAL[_sniff(p)](str(p))


def _key(message_id: str) -> bytes:
    return hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def read_sources(
    specs: Sequence[str | Source],
    *,
    user_emails: Sequence[str],
    stats: SourceStats | None = None,
) -> Iterator[MailRecord]:
    """The user's own mail from every spec, in order, deduplicated by ``message_id`` across
    sources. ``specs`` may hold already-opened ``Source``s. Sources are opened now (so a bad
    path fails before any work); messages are read lazily. Every skipped message is counted
    in ``stats``; only a source that cannot be read at all raises."""
    if isinstance(specs, str):
        specs = [specs]
    users = normalise_emails(user_emails)
    sources = [s if isinstance(s, Source) else open_source(s) for s in specs]
    return _chain(sources, users, stats if stats is not None else SourceStats())


def _chain(sources: list[Source], users: frozenset[str], stats: SourceStats) -> Iterator[MailRecord]:
    seen: set[bytes] = set()
    for source in sources:
        for rec in source.records(user_emails=users, stats=stats):
            k = _key(rec.message_id)
            if k in seen:
                stats.drop("duplicate")
                continue
            seen.add(k)
            stats.kept += 1
            yield rec
