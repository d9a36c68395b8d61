"""Maildir folders (``cur/`` and ``new/``), plus Maildir++ subfolders (``.Sent`` …) labelled by name.

``mailbox.Maildir`` streams well enough: its index is only the file names of ``cur/`` and
``new/`` (a few MB for 100k messages), and each message is read only when asked for.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from pathlib import Path

from mailvoice.errors import MailvoiceError
from mailvoice.sources.base import MAX_MESSAGE_BYTES, RawMail, Source


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


class MaildirSource(Source):
    def __init__(self, path: str | os.PathLike, *, max_bytes: int = MAX_MESSAGE_BYTES):
        self.path = Path(path)
        self.name = f"maildir:{os.path.abspath(self.path)}"
        self.max_bytes = max_bytes

    def _open(self, path: Path) -> mailbox.Maildir:
        if not is_maildir(path):
            raise MailvoiceError(f"not a Maildir (no cur/ and new/): {path}")
        try:
            return mailbox.Maildir(path, factory=None, create=False)
        except OSError as e:
            raise MailvoiceError(f"cannot read Maildir {path}: {e.strerror or type(e).__name__}") from None

    def iter_raw(self) -> Iterator[RawMail]:
        md = self._open(self.path)
        yield from self._iter_one(md, self.path, ())
        try:
            folders = sorted(md.list_folders())
        except OSError:
            folders = []
        for name in folders:
            sub = self.path / ("." + name)
            if is_maildir(sub):
                yield from self._iter_one(self._open(sub), sub, (name,))

    def _iter_one(self, md: mailbox.Maildir, path: Path, labels: tuple[str, ...]) -> Iterator[RawMail]:
        try:
            keys = md.keys()  # lists cur/ and new/: names only
        except OSError as e:
            raise MailvoiceError(f"cannot read Maildir {path}: {e.strerror or type(e).__name__}") from None
        keys.sort()  # unique names start with the delivery time: roughly chronological
        for key in keys:
            try:
                f = md.get_file(key)
            except (KeyError, FileNotFoundError):
                yield RawMail(b"", labels, error="vanished")  # moved by a running mail client
                continue
            except OSError:
                yield RawMail(b"", labels, error="unreadable")
                continue
            try:
                data = f.read(self.max_bytes + 1)
            except OSError:
                yield RawMail(b"", labels, error="unreadable")
                continue
            finally:
                f.close()
            if len(data) > self.max_bytes:
                yield RawMail(b"", labels, error="too_large")
            else:
                yield RawMail(data, labels)
