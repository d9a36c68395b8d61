"""A single ``.eml`` file, or a folder of them (recursive; ``.mbox`` files met there are read too)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from mailvoice.errors import MailvoiceError
from mailvoice.sources.base import MAX_MESSAGE_BYTES, RawMail, SkipFile, Source, raw_from_file, read_regular
from mailvoice.sources.mbox import iter_mbox


def read_limited(path: Path, max_bytes: int) -> bytes | None:
    """The file's bytes, or None if it is larger than ``max_bytes`` (never read past that).
    Raises ``SkipFile`` for anything but a regular file."""
    return read_regular(path, max_bytes)


def iter_eml_tree(root: Path, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Iterator[RawMail]:
    """Every ``*.eml`` (and ``*.mbox``) under ``root`` in sorted order, labelled with its
    folder relative to ``root``. A file that cannot be read, is not a regular file (a FIFO, a
    device) or is a symlink out of ``root`` is a ``RawMail`` with ``error`` (never opened
    blocking, never followed out); linked folders are not descended (``os.walk``'s default)."""
    errors: list[OSError] = []
    if not os.access(root, os.R_OK | os.X_OK):
        raise MailvoiceError(f"cannot read folder {root}")
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        while errors:  # a subfolder that could not be listed: counted, not fatal
            errors.pop()
            yield RawMail(b"", (), error="unreadable")
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        labels = () if rel == "." else (Path(rel).as_posix(),)
        for fn in sorted(filenames):
            low = fn.lower()
            p = Path(dirpath, fn)
            if low.endswith(".eml"):
                yield raw_from_file(p, max_bytes, labels, root=root)
            elif low.endswith(".mbox") and not p.is_dir():
                try:
                    for data in iter_mbox(p, max_bytes=max_bytes, root=root):
                        if data is None:
                            yield RawMail(b"", labels, error="too_large")
                        else:
                            yield RawMail(data, labels)
                except SkipFile as e:
                    yield RawMail(b"", labels, error=e.reason)
                except MailvoiceError:
                    yield RawMail(b"", labels, error="unreadable")
    for _ in errors:
        yield RawMail(b"", (), error="unreadable")


class EmlSource(Source):
    """``eml:PATH``: one .eml file, or a folder searched recursively."""

    def __init__(self, path: str | os.PathLike, *, max_bytes: int = MAX_MESSAGE_BYTES):
        self.path = Path(path)
        self.name = f"eml:{os.path.abspath(self.path)}"
        self.max_bytes = max_bytes

    def iter_raw(self) -> Iterator[RawMail]:
        if self.path.is_dir():
            yield from iter_eml_tree(self.path, max_bytes=self.max_bytes)
            return
        try:
            data = read_limited(self.path, self.max_bytes)
        except SkipFile as e:
            raise MailvoiceError(f"cannot read {e}") from None
        if data is None:
            yield RawMail(b"", (), error="too_large")
        else:
            yield RawMail(data, ())
