"""Per-user workspace: one root, one folder per user, private by construction.

Layout: ``<root>/<user-id>/{data,runs,models,eval}``. Folders are 0700 and files 0600 whatever
the caller's umask, because mail is the most sensitive thing a user owns. Every write goes to a
temporary name in the same folder and is renamed into place, so a crash never leaves a
half-written artefact under the real name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import MailvoiceError

DEFAULT_ROOT = "./mailvoice-data"
USER_DIRS = ("data", "runs", "models", "eval")  # one user's folders (not the vault's backup PARTS)
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

DIR_MODE = 0o700
FILE_MODE = 0o600


def validate_user_id(user_id: str) -> str:
    """Reject anything that could escape the workspace or collide: letters, digits, - and _ only."""
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        shown = user_id if isinstance(user_id, str) and len(user_id) <= 64 else "(too long)"
        raise MailvoiceError(
            f"invalid user id {shown!r}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return user_id


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    return Path(root or os.environ.get("MAILVOICE_HOME") or DEFAULT_ROOT).expanduser().absolute()


def make_private_dir(path: Path) -> Path:
    """mkdir -p with 0700 on every folder we create (umask-proof)."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(d, DIR_MODE)
    if not path.is_dir():
        raise MailvoiceError(f"not a folder: {path}")
    return path


@dataclass(frozen=True)
class UserSpace:
    root: Path
    user_id: str

    @property
    def path(self) -> Path:
        return self.root / self.user_id

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def runs(self) -> Path:
        return self.path / "runs"

    @property
    def models(self) -> Path:
        return self.path / "models"

    @property
    def eval(self) -> Path:
        return self.path / "eval"

    def ensure(self) -> UserSpace:
        make_private_dir(self.root)
        for name in USER_DIRS:
            make_private_dir(self.path / name)
        return self

    def exists(self) -> bool:
        return self.path.is_dir()

    def run_dirs(self) -> list[Path]:
        """Training runs (``runs/*``), oldest name first; links are never followed out of the space."""
        if not self.runs.is_dir() or self.runs.is_symlink():
            return []
        return sorted(p for p in self.runs.iterdir() if p.is_dir() and not p.is_symlink())

    def checkpoint_dirs(self) -> list[Path]:
        """Every run's ``checkpoint-*`` folders (links skipped), run by run."""
        return [c for r in self.run_dirs() for c in sorted(r.glob("checkpoint-*")) if c.is_dir() and not c.is_symlink()]


def user_space(user_id: str, root: str | os.PathLike | None = None) -> UserSpace:
    return UserSpace(resolve_root(root), validate_user_id(user_id))


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temp file beside ``path`` (0600); rename over ``path`` only if the block succeeds
    (file and folder fsynced: after a crash the path holds the old or the new content, whole)."""
    path = Path(path)
    make_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash once the folder is synced
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_text(path: Path, text: str) -> Path:
    with atomic_open(path) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_jsonl(path: Path, rows) -> int:
    n = 0
    with atomic_open(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise MailvoiceError(f"file not found: {path}")
    out = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    raise MailvoiceError(f"{path}: line {i} is not valid JSON") from None
    return out


def sha256_file(path: Path, chunk: int = 4 << 20) -> str:
    """Hex sha256 of a file, streamed (checkpoints and GGUFs are GBs)."""

    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def privatise_tree(path: Path) -> None:
    """Force 0700/0600 on a tree written by a library that ignores our modes (save_pretrained)."""
    path = Path(path)
    if path.is_file():
        os.chmod(path, FILE_MODE)
        return
    os.chmod(path, DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(path):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), DIR_MODE)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), FILE_MODE)
