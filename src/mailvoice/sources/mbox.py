"""mbox files (mboxo and mboxrd; Google Takeout's ``Sent.mbox`` / ``All mail … .mbox``), streamed.

Why not ``mailbox.mbox``: it scans the whole file to build a table of contents before the
first message comes out (a second full pass over a multi-GB Takeout file, and an O(messages)
index), opens the file read-write when it can (we never want to lock or touch the user's
export), treats every line starting with "From " as a separator, and does no ``>From ``
unescaping. This reader makes one forward pass over a binary file, holds one message at a
time, and never buffers more than ``MAX_MESSAGE_BYTES`` of any message, so memory stays flat
however big the mbox is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from mailvoice.errors import MailvoiceError
from mailvoice.sources.base import MAX_MESSAGE_BYTES, RawMail, SkipFile, Source, open_regular

# A postmark line "From sender@example.com Thu Aug 22 12:36:23 2002": the blank line before it is
# the usual separator cue; when a writer left it out, a line that looks like a postmark (a time
# of day, then a 4-digit year) still counts. Anything else starting "From " is body text.
_POSTMARK = re.compile(rb"From \S+ +[^\n]*\b\d{1,2}:\d{2}(?::\d{2})?\b[^\n]*\d{4}")
_FROM_LINE = re.compile(rb"^From [^\n]*\n?", re.MULTILINE)
_UNESCAPE = re.compile(rb"^>(>*From )", re.MULTILINE)  # mboxrd; for mboxo the one ">" is the same
_BLANK = (b"\n", b"\r\n")
_CHUNK = 1 << 20
_MAX_LINE = 1 << 16  # a longer line without newline is passed on as body, never a separator


class _Message:
    """Pieces of the message being read, dropped as soon as it passes ``max_bytes``."""

    __slots__ = ("max_bytes", "oversized", "pieces", "size", "started")

    def __init__(self, max_bytes: int, started: bool):
        self.max_bytes = max_bytes
        self.pieces: list[bytes] = []
        self.size = 0
        self.oversized = False
        self.started = started

    def add(self, piece: bytes) -> None:
        if not piece or self.oversized:
            return
        self.size += len(piece)
        if self.size > self.max_bytes:
            self.oversized = True
            self.pieces = []
        else:
            self.pieces.append(piece)

    def worth_yielding(self) -> bool:
        return self.started or self.oversized or any(p.strip() for p in self.pieces)

    def finish(self) -> bytes | None:
        if self.oversized:
            return None
        data = b"".join(self.pieces)
        if b">From " in data:
            data = _UNESCAPE.sub(rb"\1", data)
        if data.endswith(b"\r\n\r\n"):
            data = data[:-2]  # the separator blank line belongs to the mbox, not the message
        elif data.endswith(b"\n\n"):
            data = data[:-1]
        return data


def iter_mbox(
    path: str | os.PathLike, *, max_bytes: int = MAX_MESSAGE_BYTES, chunk_size: int = _CHUNK,
    root: str | os.PathLike | None = None,
) -> Iterator[bytes | None]:
    """Yield each message's bytes (postmark line removed, ``>From `` unescaped, the blank
    separator line dropped), or None for a message larger than ``max_bytes`` (not buffered).
    Text before the first postmark, if any, is taken as a message. Raises ``MailvoiceError``
    naming the path if the file cannot be read, ``SkipFile`` if it is not a regular file (a FIFO
    would block for ever, ``/dev/zero`` never ends) or, with ``root``, a symlink out of ``root``.

    Reads ``chunk_size`` blocks and finds "From " line starts with a regex over whole blocks of
    complete lines (the rest of a block waits for the next one), so the per-byte work is C."""
    try:
        f = open_regular(path, root=root)  # closed in finally, the generator may be abandoned
    except SkipFile as e:
        if e.reason == "unreadable":
            raise MailvoiceError(f"cannot read mbox {e}") from None
        raise
    try:
        msg = _Message(max_bytes, started=False)
        carry = b""
        prev_blank = True  # the line before the next block was blank (start of file counts)
        mid_line = False  # the next block starts inside an over-long line
        eof = False
        while not eof:
            try:
                chunk = f.read(chunk_size)
            except OSError as e:
                raise MailvoiceError(f"cannot read mbox {path}: {e.strerror or type(e).__name__}") from None
            if chunk:
                data = carry + chunk if carry else chunk
                cut = data.rfind(b"\n") + 1
                if cut == 0 and len(data) < _MAX_LINE:
                    carry = data
                    continue
                if cut == 0:
                    cut = len(data)
                seg, carry = data[:cut], data[cut:]
            else:
                eof = True
                seg, carry = carry, b""
                if not seg:
                    break
            pos = 0
            for m in _FROM_LINE.finditer(seg):
                s = m.start()
                if m.end() - s > 1000:
                    continue  # no postmark is that long
                if s == 0:
                    if mid_line:
                        continue
                    blank = prev_blank
                else:
                    ls = seg.rfind(b"\n", 0, s - 1) + 1
                    blank = not (ls == 0 and mid_line) and seg[ls:s] in _BLANK
                if not blank and not _POSTMARK.match(seg, s):
                    continue
                msg.add(seg[pos:s])
                if msg.worth_yielding():
                    yield msg.finish()
                msg = _Message(max_bytes, started=True)
                pos = m.end()
            msg.add(seg[pos:])
            ls = seg.rfind(b"\n", 0, len(seg) - 1) + 1
            prev_blank = not (ls == 0 and mid_line) and seg[ls:] in _BLANK
            mid_line = not seg.endswith(b"\n")
        if msg.worth_yielding():
            yield msg.finish()
    finally:
        f.close()


class MboxSource(Source):
    def __init__(self, path: str | os.PathLike, *, labels: tuple[str, ...] = ()):
        self.path = Path(path)
        self.name = f"mbox:{os.path.abspath(self.path)}"
        self.labels = labels

    def iter_raw(self) -> Iterator[RawMail]:
        if self.path.is_dir():
            raise MailvoiceError(f"not an mbox file (a folder): {self.path}")
        for data in iter_mbox(self.path):
            if data is None:
                yield RawMail(b"", self.labels, error="too_large")
            else:
                yield RawMail(data, self.labels)
