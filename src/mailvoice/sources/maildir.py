"""Maildir folders (``cur/`` and ``new/``), plus Maildir++ subfolders (``.Sent`` …) labelled by name.

``mailbox.Maildir`` finds the Maildir++ subfolders; the messages of ``cur/`` and ``new/`` are
listed here (names only, a few MB for 100k messages) and each is read only when its turn comes,
through ``open_regular``: ``Maildir.get_file`` would block on a FIFO and follow a symlink to
``/dev/zero`` or out of the Maildir.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from pathlib import Path

from mailvoice.errors import MailvoiceError
from mailvoice.sources.base import MAX_MESSAGE_BYTES, RawMail, Source, is_inside, raw_from_file


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
        entries: list[tuple[str, str]] = []
        for sub in ("new", "cur"):
            if not is_inside(os.path.realpath(path / sub), os.path.realpath(self.path)):
                yield RawMail(b"", labels, error="symlink_outside_source")  # cur/ or .Sent linked elsewhere
                continue
            try:
                with os.scandir(path / sub) as it:
                    # as mailbox.Maildir does: dot files are not messages; the key is the name up to ':'
                    entries.extend((e.name.split(":", 1)[0], e.path) for e in it if not e.name.startswith("."))
            except OSError as e:
                raise MailvoiceError(f"cannot read Maildir {path}: {e.strerror or type(e).__name__}") from None
        entries.sort()  # unique names start with the delivery time: roughly chronological
        for _key, file in entries:
            raw = raw_from_file(Path(file), self.max_bytes, labels, root=self.path)
            if raw.error == "unreadable" and not os.path.lexists(file):
                raw = RawMail(b"", labels, error="vanished")  # moved by a running mail client
            yield raw
