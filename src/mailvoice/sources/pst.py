"""Outlook ``.pst`` files, through ``readpst`` (Debian's ``pst-utils``), which has the only
maintained free PST reader. ``readpst -e`` writes one .eml per message into a private (0700)
temporary folder, which is read like an .eml folder and removed afterwards, even when the
ingest is abandoned half way (generator close runs the ``finally``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mailvoice.errors import MailvoiceError
from mailvoice.sources.base import MAX_MESSAGE_BYTES, RawMail, Source
from mailvoice.sources.eml import iter_eml_tree

INSTALL_HINT = "reading .pst files needs readpst: install it with `apt-get install pst-utils`"


def find_readpst() -> str:
    exe = shutil.which("readpst")
    if not exe:
        raise MailvoiceError(INSTALL_HINT)
    return exe


class PstSource(Source):
    def __init__(self, path: str | os.PathLike, *, max_bytes: int = MAX_MESSAGE_BYTES):
        self.path = Path(path)
        self.name = f"pst:{os.path.abspath(self.path)}"
        self.max_bytes = max_bytes
        find_readpst()  # fail at open time, before any ingest starts

    def iter_raw(self) -> Iterator[RawMail]:
        exe = find_readpst()
        if not self.path.is_file() or not os.access(self.path, os.R_OK):
            raise MailvoiceError(f"cannot read PST file {self.path}")
        tmp = tempfile.mkdtemp(prefix="mailvoice-pst-")  # mode 0700
        try:
            os.chmod(tmp, 0o700)
            try:
                proc = subprocess.run(
                    # -e: one .eml per message in folders; -t e: emails only; -b: no RTF bodies;
                    # -8: UTF-8 bodies where the PST has them; -q: errors only.
                    [exe, "-e", "-q", "-b", "-8", "-t", "e", "-o", tmp, str(self.path)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            except OSError as e:
                raise MailvoiceError(f"cannot run readpst: {e.strerror or type(e).__name__}") from None
            if proc.returncode != 0:
                # readpst's stderr can quote folder names or subjects: keep it out of the message.
                raise MailvoiceError(f"readpst could not read {self.path} (exit {proc.returncode})")
            yield from iter_eml_tree(Path(tmp), max_bytes=self.max_bytes)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
