"""Check a command's paths before any work starts.

A missing input, an output under a regular file, a folder that cannot be written or a config that
is not UTF-8 must fail in a second with one ``error: …`` line, not after an hour of ingest or
training with a traceback. These checks create nothing: a failed command leaves no trace.

``os.access`` is used on purpose (not a probe file): it answers for the real user, and as root
it still reports a read-only filesystem (EROFS), while writing a probe would leave litter behind
when the command is then interrupted.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import MailvoiceError

#: Text inputs (configs, prompt lists, user maps) are small; a bigger one is not what was meant.
MAX_TEXT_BYTES = 64 * 1024 * 1024


def _nearest_existing(p: Path) -> Path:
    for anc in (p, *p.parents):
        if os.path.lexists(anc):
            return anc
    return Path(p.anchor or ".")


def _why_not_creatable(p: Path) -> str | None:
    anc = _nearest_existing(p.parent)
    if not anc.is_dir():
        return f"{anc} is not a folder"
    if not os.access(anc, os.W_OK | os.X_OK):
        return f"{anc} is not writable"
    return None


def writable_dir(path: str | os.PathLike, flag: str) -> Path:
    """A folder that exists and can be written, or can be created (its parents too)."""
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise MailvoiceError(f"{flag} {p}: exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise MailvoiceError(f"{flag} {p}: folder is not writable")
        return p
    why = _why_not_creatable(p / "_")
    if why:
        raise MailvoiceError(f"{flag} {p}: cannot create it, {why}")
    return p


def writable_file(path: str | os.PathLike, flag: str) -> Path:
    """A file that can be (over)written: not a folder, and its folder writable or creatable."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise MailvoiceError(f"{flag} {p}: is a folder, expected a file")
    if p.exists():
        if not os.access(p.parent, os.W_OK | os.X_OK):  # replaced by rename: the folder must be writable
            raise MailvoiceError(f"{flag} {p}: its folder is not writable")
        return p
    why = _why_not_creatable(p)
    if why:
        raise MailvoiceError(f"{flag} {p}: cannot create it, {why}")
    return p


def readable_file(path: str | os.PathLike, flag: str, *, text: bool = False) -> Path:
    """A regular file that can be read; with ``text``, also valid UTF-8 (read once, it is small)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise MailvoiceError(f"{flag} {p}: no such file")
    if p.is_dir():
        raise MailvoiceError(f"{flag} {p}: is a folder, expected a file")
    if not p.is_file():  # a FIFO or device would block or never end
        raise MailvoiceError(f"{flag} {p}: not a regular file")
    if not os.access(p, os.R_OK):
        raise MailvoiceError(f"{flag} {p}: not readable")
    if text:
        if p.stat().st_size > MAX_TEXT_BYTES:
            raise MailvoiceError(f"{flag} {p}: larger than {MAX_TEXT_BYTES >> 20} MiB, not a text input")
        try:
            p.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise MailvoiceError(f"{flag} {p}: not UTF-8 text (byte {e.start})") from None
        except OSError as e:
            raise MailvoiceError(f"{flag} {p}: cannot read it, {e.strerror or type(e).__name__}") from None
    return p


def readable_dir(path: str | os.PathLike, flag: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise MailvoiceError(f"{flag} {p}: no such folder")
    if not p.is_dir():
        raise MailvoiceError(f"{flag} {p}: not a folder")
    if not os.access(p, os.R_OK | os.X_OK):
        raise MailvoiceError(f"{flag} {p}: not readable")
    return p


def existing(path: str | os.PathLike, flag: str) -> Path:
    """A file or folder that exists (the verb itself says what it must hold)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise MailvoiceError(f"{flag} {p}: no such file or folder")
    if not (p.is_dir() or p.is_file()):
        raise MailvoiceError(f"{flag} {p}: not a regular file or folder")
    return p
