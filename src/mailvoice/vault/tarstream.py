"""A pull-based tar writer (no temporary file) and a tar-slip-proof, digest-checking reader."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import MailvoiceError
from ..workspace import make_private_dir

READ = 4 * 2**20
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
# top-level folders of a user space that a backup may hold
ALLOWED_TOP = ("data", "runs", "models", "eval", "configs")
# the sealed copy of the manifest: the last member, never restored (not in ALLOWED_TOP)
SEAL_MEMBER = ".mailvoice-manifest.json"
MAX_SEAL = 64 * 2**20


@dataclass
class FileEntry:
    path: str  # posix, relative to the user space
    source: Path
    size: int
    mtime: float
    part: str
    sha256: str = ""

    def as_dict(self) -> dict:
        return {"path": self.path, "part": self.part, "size": self.size, "sha256": self.sha256, "mtime": self.mtime}


def check_relpath(name: str) -> str:
    """A member or manifest path must be relative, normalised, inside an allowed top folder."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise MailvoiceError("backup holds an unsafe path (refused)")
    if name.startswith("/") or posixpath.normpath(name) != name.rstrip("/") or name.startswith(".."):
        raise MailvoiceError("backup holds an unsafe path (absolute or with '..'; refused)")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts) or parts[0] not in ALLOWED_TOP:
        raise MailvoiceError("backup holds an unsafe path (outside the user's folders; refused)")
    size = [len(p.encode("utf-8", "surrogatepass")) for p in parts]
    if sum(size) + len(size) > 4000 or max(size) > 255:
        raise MailvoiceError("backup holds a path too long for the filesystem (refused)")
    return name.rstrip("/")


def _header(name: str, size: int, mtime: float) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = int(mtime)
    ti.mode = 0o600
    ti.type = tarfile.REGTYPE
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _tar_chunks(entries: list[FileEntry], trailer: Callable[[], bytes] | None = None) -> Iterator[bytes]:
    total = 0
    for e in entries:
        header = _header(e.path, e.size, e.mtime)
        total += len(header)
        yield header
        sha = hashlib.sha256()
        left = e.size
        try:
            fh = open(e.source, "rb", buffering=0)
        except OSError:
            raise MailvoiceError(f"cannot read {e.path} during backup") from None
        with fh:
            while left:
                chunk = fh.read(min(READ, left))
                if not chunk:
                    raise MailvoiceError(f"{e.path} shrank during backup; retry when training is idle")
                sha.update(chunk)
                left -= len(chunk)
                yield chunk
        e.sha256 = sha.hexdigest()
        pad = (-e.size) % _BLOCK
        total += e.size + pad
        if pad:
            yield b"\0" * pad
    if trailer is not None:  # called only now: every entry's sha256 is known
        data = trailer()
        header = _header(SEAL_MEMBER, len(data), 0)
        pad = (-len(data)) % _BLOCK
        total += len(header) + len(data) + pad
        yield header + data + b"\0" * pad
    end = b"\0" * (2 * _BLOCK)
    total += len(end)
    yield end + b"\0" * ((-total) % _RECORD)


class TarStream(io.RawIOBase):
    """A readable stream of the tar of ``entries``; fills each entry's sha256 as it goes.
    ``trailer()``, if given, is called after the last entry and its bytes become the last
    member (the sealed manifest)."""

    def __init__(self, entries: list[FileEntry], trailer: Callable[[], bytes] | None = None):
        self._gen = _tar_chunks(entries, trailer)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = memoryview(next(self._gen))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


@dataclass
class Extracted:
    path: str
    size: int
    sha256: str


@dataclass
class ArchiveContents:
    files: list[Extracted]
    seal: bytes | None  # the sealed manifest's bytes, when the archive ends with one


def read_archive(
    fileobj,
    expected: dict[str, dict],
    staging: Path | None,
    *,
    seal: bool = False,
) -> ArchiveContents:
    """Read a tar stream; check every member against the manifest (``expected``: path → entry).

    With ``staging`` the files are written below it (0600/0700); without, only digests are
    checked. Refuses absolute paths, ``..``, links, devices, sparse members and anything not in
    the manifest. With ``seal`` the last member must be the sealed manifest (kept in memory,
    returned for the caller to compare; it is never written).
    """
    seen: list[Extracted] = []
    names: set[str] = set()
    sealed: bytes | None = None
    try:
        tar = tarfile.open(fileobj=fileobj, mode="r|", errorlevel=2)
    except (tarfile.TarError, EOFError, OSError, UnicodeError, ValueError, OverflowError):
        raise MailvoiceError("backup archive is not a readable tar (corrupted or wrong key)") from None
    with tar:
        try:
            for member in tar:
                if sealed is not None:
                    raise MailvoiceError("backup archive holds members after its sealed manifest (refused)")
                if seal and member.name == SEAL_MEMBER:
                    sealed = _read_seal(tar, member)
                    continue
                _check_member(member, staging)
                name = check_relpath(member.name)
                want = expected.get(name)
                if want is None:
                    raise MailvoiceError("backup archive holds a file that its manifest does not list (refused)")
                if name in names:
                    raise MailvoiceError("backup archive holds a file twice (refused)")
                if member.size != int(want["size"]):
                    raise MailvoiceError(f"size of {name} does not match the manifest (refused)")
                names.add(name)
                src = tar.extractfile(member)
                try:
                    seen.append(_copy_member(src, member.size, name, staging, want["sha256"]))
                except OSError as exc:  # e.g. a file where an earlier member made a folder
                    raise MailvoiceError(f"backup archive holds a path that cannot be created "
                                         f"({exc.strerror or type(exc).__name__}; refused)") from None
        except (tarfile.TarError, EOFError, UnicodeError, ValueError, OverflowError):
            # EOFError: a truncated stream; the others: header fields tarfile cannot decode
            raise MailvoiceError("backup archive is truncated or corrupted") from None
    missing = set(expected) - names
    if missing:
        raise MailvoiceError(f"backup archive lacks {len(missing)} file(s) its manifest lists (refused)")
    if seal and sealed is None:
        raise MailvoiceError("backup archive lacks its sealed manifest: the backup was forged or tampered with")
    return ArchiveContents(seen, sealed)


def _read_seal(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if not member.isreg() or member.issparse() or member.size > MAX_SEAL:
        raise MailvoiceError("backup archive's sealed manifest is not a plain, small file (refused)")
    data = tar.extractfile(member).read(member.size)
    if len(data) != member.size:
        raise MailvoiceError("backup archive is truncated")
    return data


def _check_member(member: tarfile.TarInfo, staging: Path | None) -> None:
    if member.issparse():
        # a GNU sparse member of a few KB can expand to any size on disk
        raise MailvoiceError("backup archive holds a sparse member (refused: vault archives never contain one)")
    if member.issym() or member.islnk():
        raise MailvoiceError("backup archive holds a link (refused: vault archives never contain links)")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise MailvoiceError("backup archive holds a device or fifo (refused)")
    if not member.isreg():  # folders too: vault archives hold regular files only
        raise MailvoiceError("backup archive holds an unsupported member type (refused)")
    # the stdlib's own tar-slip filter, as a second opinion
    try:
        tarfile.data_filter(member, str(staging) if staging is not None else "/nonexistent-vault-root")
    except tarfile.FilterError:
        raise MailvoiceError("backup archive holds an unsafe member (refused by tarfile's data filter)") from None


def _mkdirs(staging: Path, name: str) -> Path:
    target = staging.joinpath(*name.split("/"))
    _assert_inside(staging, target)
    make_private_dir(target)
    return target


def _assert_inside(staging: Path, target: Path) -> None:
    real_root = os.path.realpath(staging)
    real = os.path.realpath(target)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise MailvoiceError("backup archive path escapes the restore folder (refused)")


def _copy_member(src, size: int, name: str, staging: Path | None, want_sha: str) -> Extracted:
    sha = hashlib.sha256()
    out = None
    if staging is not None:
        parent, _, base = name.rpartition("/")
        pdir = _mkdirs(staging, parent) if parent else staging
        target = pdir / base
        _assert_inside(staging, target)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        out = os.fdopen(fd, "wb", buffering=0)
    try:
        left = size
        while left:
            chunk = src.read(min(READ, left))
            if not chunk:
                raise MailvoiceError("backup archive is truncated")
            sha.update(chunk)
            if out is not None:
                out.write(chunk)
            left -= len(chunk)
    finally:
        if out is not None:
            out.close()
    digest = sha.hexdigest()
    if digest != want_sha:
        raise MailvoiceError(f"digest of {name} does not match the manifest (refused)")
    return Extracted(name, size, digest)


def is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


ProgressFn = Callable[[int], None]
