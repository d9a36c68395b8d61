"""What every source shares: the ``Source`` base class and safe file reading (the counters and the
raw-message envelope live in ``record.py``).

A source yields ``RawMail`` (the bytes of one RFC 5322 message plus the labels it knows); the
default ``Source.records`` parses each one, drops what the user did not author, and yields
``MailRecord``s. A source that already has structured data (a database) overrides ``records``.
"""

from __future__ import annotations

import abc
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mailvoice.errors import MailvoiceError
from mailvoice.sources.filters import process_raw
from mailvoice.sources.record import MailRecord, RawMail, SourceStats  # noqa: F401  (re-exported)

#: Messages larger than this are skipped (counted as ``malformed`` / ``too_large``) without
#: being held in memory: the readers stop buffering once a message passes it.
MAX_MESSAGE_BYTES = 128 * 1024 * 1024


#: Why a message was skipped before it was parsed (``SourceStats.errors`` codes; each one is also
#: a ``malformed`` drop). The prepare summary lists them.
SKIP_REASONS = (
    "too_large",  # over MAX_MESSAGE_BYTES
    "unreadable",  # the OS refused to read it
    "vanished",  # moved by a running mail client
    "not_regular_file",  # a FIFO, device, socket or folder where a message file was expected
    "symlink_outside_source",  # a link out of the source folder (/dev/zero, another user's mail)
    "header_too_large",  # the header block is over MAX_HEADER_BYTES (parse.py)
    "too_many_headers",  # more than MAX_HEADER_FIELDS fields
    "header_field_too_large",  # one field over MAX_FIELD_BYTES, in any MIME part
)


class SkipFile(MailvoiceError):
    """A file that is not to be read as mail; ``reason`` is one of ``SKIP_REASONS``."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str | None = None):
        super().__init__(f"{path}: {detail or reason.replace('_', ' ')}")
        self.reason = reason


def is_inside(path: str, root: str) -> bool:
    """``path`` is ``root`` or below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def open_regular(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> BinaryIO:
    """Open a message file for reading, never blocking and never leaving ``root``.

    A FIFO named ``*.eml`` blocks a plain ``open`` for ever and ``/dev/zero`` never ends, so the
    file is opened non-blocking and kept only if ``fstat`` says it is a regular file. With
    ``root``, a symlink is followed only when its target is inside ``root`` (both resolved).
    Raises ``SkipFile``."""
    target = os.fspath(path)
    if root is not None and os.path.islink(target):
        target = os.path.realpath(target)
        if not is_inside(target, os.path.realpath(root)):
            raise SkipFile(path, "symlink_outside_source")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    if root is not None:
        flags |= getattr(os, "O_NOFOLLOW", 0)  # resolved above: a link now is a race, refuse it
    try:
        fd = os.open(target, flags)
    except OSError as e:
        raise SkipFile(path, "unreadable", e.strerror) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SkipFile(path, "not_regular_file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, max_bytes: int, *, root: str | os.PathLike | None = None) -> bytes | None:
    """The bytes of a regular file (see ``open_regular``), or None past ``max_bytes`` (never read
    further). Raises ``SkipFile``."""
    with open_regular(path, root=root) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError:
            raise SkipFile(path, "unreadable") from None
    return None if len(data) > max_bytes else data


def raw_from_file(path: Path, max_bytes: int, labels: tuple[str, ...] = (), *,
                  root: str | os.PathLike | None = None) -> RawMail:
    """One message file as a ``RawMail``; every reason not to read it becomes ``error``."""
    try:
        data = read_regular(path, max_bytes, root=root)
    except SkipFile as e:
        return RawMail(b"", labels, error=e.reason)
    return RawMail(b"", labels, error="too_large") if data is None else RawMail(data, labels)


class Source(abc.ABC):
    """A place mail comes from. ``name`` goes into ``MailRecord.source``: never put secrets in it."""

    name: str = ""

    @abc.abstractmethod
    def iter_raw(self) -> Iterator[RawMail]:
        """Yield every message, streaming. Raise ``MailvoiceError`` if the source as a whole
        cannot be read; a single bad message is a ``RawMail`` with ``error`` set."""

    def records(self, *, user_emails: frozenset[str], stats: SourceStats) -> Iterator[MailRecord]:
        """Parse and filter ``iter_raw``; counts ``seen`` and every drop except ``duplicate``."""
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
