"""``records.jsonl``: one ``MailRecord`` JSON object per line, written atomically with mode 0600."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from mailvoice.errors import MailvoiceError
from mailvoice.sources.record import MailRecord


def write_records(records: Iterable[MailRecord], path: str | os.PathLike) -> int:
    """Stream ``records`` into ``path`` atomically (temp file in the same folder, fsync,
    ``os.replace``); the file is 0600. Returns how many were written. On any failure the old
    file, if any, is left as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise MailvoiceError(f"cannot write {path}: {e.strerror or type(e).__name__}") from None
    n = 0
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for rec in records:
                f.write(rec.to_json())
                f.write("\n")
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise MailvoiceError(f"cannot write {path}: {e.strerror or type(e).__name__}") from None
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return n


def read_records(path: str | os.PathLike) -> Iterator[MailRecord]:
    """Stream the records of a JSONL file. Raises ``MailvoiceError`` naming the path (and line
    number, never its content) if it cannot be read or a line is not a record. Blank lines are
    skipped."""
    path = Path(path)
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise MailvoiceError(f"cannot read {path}: {e.strerror or type(e).__name__}") from None
    with f:
        lineno = 0
        while True:
            try:
                line = f.readline()
            except (OSError, UnicodeDecodeError) as e:
                raise MailvoiceError(f"cannot read {path} after line {lineno}: {type(e).__name__}") from None
            if not line:
                return
            lineno += 1
            if not line.strip():
                continue
            try:
                yield MailRecord.from_json(line)
            except (ValueError, TypeError, AttributeError):
                raise MailvoiceError(f"{path} line {lineno} is not a mail record") from None
