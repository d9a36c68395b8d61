"""Where backups live: any fsspec URL (``s3://bucket/prefix``, a local path, ``gs://``, …).

Key layout: ``<prefix>/<user-id>/<timestamp>-<backup-id>/{archive.tar.age | archive.tar,
[key.age], manifest.json}``. The manifest is written last: a folder without a readable manifest
is an incomplete backup and is never chosen as "latest".
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import fsspec
from fsspec.asyn import sync
from fsspec.implementations.local import LocalFileSystem

from ..errors import MailvoiceError
from ..workspace import atomic_open, make_private_dir

ENV_ENDPOINT = "AWS_ENDPOINT_URL"
BLOCK_SIZE = 32 * 2**20  # multipart part size for uploads (S3 minimum is 5 MiB)
READ_CHUNK = 8 * 2**20


def storage_options(
    dest_url: str,
    *,
    endpoint_url: str | None = None,
    sse: str | None = None,
    sse_kms_key_id: str | None = None,
    storage_class: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """fsspec options for ``dest_url``. For s3: endpoint (else ``$AWS_ENDPOINT_URL``), server-side
    encryption (``"AES256"`` or ``"aws:kms"`` + key id) and storage class (``"STANDARD_IA"``…)."""
    opts: dict[str, Any] = dict(extra or {})
    proto = protocol_of(dest_url)
    if proto in ("s3", "s3a"):
        endpoint = endpoint_url or os.environ.get(ENV_ENDPOINT)
        if endpoint:
            opts["endpoint_url"] = endpoint
        add = dict(opts.get("s3_additional_kwargs") or {})
        if sse:
            add["ServerSideEncryption"] = sse
        if sse_kms_key_id:
            add["SSEKMSKeyId"] = sse_kms_key_id
        if storage_class:
            add["StorageClass"] = storage_class
        if add:
            opts["s3_additional_kwargs"] = add
    elif sse or sse_kms_key_id or storage_class:
        raise MailvoiceError("server-side encryption and storage class apply to s3:// destinations only")
    return opts


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


class Store:
    """One backup destination; all paths below are relative to the prefix."""

    def __init__(self, dest_url: str, options: dict[str, Any] | None = None):
        if not dest_url:
            raise MailvoiceError("no backup destination given")
        self.url = dest_url
        opts = dict(options) if options is not None else storage_options(dest_url)
        if protocol_of(dest_url) in ("s3", "s3a"):
            # without this an env endpoint given only to us would be ignored by a cached instance
            opts.setdefault("endpoint_url", os.environ.get(ENV_ENDPOINT) or None)
            if opts["endpoint_url"] is None:
                opts.pop("endpoint_url")
        try:
            self.fs, root = fsspec.core.url_to_fs(dest_url, **opts)
        except (ImportError, ValueError) as exc:
            raise MailvoiceError(f"unsupported backup destination {protocol_of(dest_url)!r}: {type(exc).__name__}") from None
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts]) if self.root else "/".join(parts)

    def invalidate(self) -> None:
        try:
            self.fs.invalidate_cache()
        except Exception:
            pass

    def ls_dirs(self, rel: str) -> list[str]:
        self.invalidate()
        try:
            entries = self.fs.ls(self.path(rel), detail=True)
        except FileNotFoundError:
            return []
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory")

    def exists(self, rel: str) -> bool:
        self.invalidate()
        try:
            return self.fs.exists(self.path(rel))
        except FileNotFoundError:
            return False

    def size(self, rel: str) -> int | None:
        self.invalidate()
        try:
            return int(self.fs.info(self.path(rel))["size"])
        except FileNotFoundError:
            return None

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open(self.path(rel), "rb") as fh:
            return fh.read()

    def local_path(self, rel: str) -> Path:
        return Path(self.fs._strip_protocol(self.path(rel)))

    def open_write(self, rel: str):
        """A binary writer for a new object; local files are 0600 in 0700 folders."""
        if self.local:
            target = self.local_path(rel)
            make_private_dir(target.parent)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            return os.fdopen(fd, "wb", buffering=2**20)
        return self.fs.open(self.path(rel), "wb", block_size=BLOCK_SIZE)

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a small object whole (atomically: rename locally, one PUT on object stores)."""
        if self.local:
            with atomic_open(self.local_path(rel), "wb") as fh:
                fh.write(data)
            return
        fh = self.open_write(rel)
        try:
            fh.write(data)
        except BaseException:
            discard(fh)
            raise
        fh.close()

    def open_read(self, rel: str):
        """A sequential binary reader. On async object stores (s3fs) this is ONE streamed GET:
        range reads cost a request each (and O(object) each on moto)."""
        if self.local:
            return open(self.local_path(rel), "rb", buffering=0)
        if getattr(self.fs, "async_impl", False) and hasattr(self.fs, "open_async"):
            try:
                return _StreamedGet(self.fs, self.path(rel))
            except (NotImplementedError, ValueError):
                pass
        return self.fs.open(self.path(rel), "rb", block_size=64 * 2**20, cache_type="none")

    def rm_tree(self, rel: str) -> None:
        self.invalidate()
        try:
            self.fs.rm(self.path(rel), recursive=True)
        except FileNotFoundError:
            pass


def discard(fh) -> None:
    """Abandon a half-written object: abort the multipart upload where there is one."""
    try:
        if hasattr(fh, "mpu"):  # s3fs S3File
            fh.discard()
            fh.closed = True
        else:
            fh.close()
    except Exception:
        pass


class _StreamedGet:
    """Sync facade over an fsspec async streamed file (s3fs ``open_async``): one GET, read in order."""

    def __init__(self, fs, path: str):
        self._sync = sync
        self.fs = fs
        self.f = sync(fs.loop, fs.open_async, path, "rb")
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        return self._sync(self.fs.loop, self.f.read, n)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        body = getattr(self.f, "r", None)
        if body is not None:
            try:
                body.close()
            except Exception:
                pass


class HashingReader(io.RawIOBase):
    """Reads a file in large chunks (one GET per chunk on object stores), hashing and counting."""

    def __init__(self, raw, chunk: int = READ_CHUNK, limit: int | None = None):
        self.raw = raw
        self.chunk = chunk
        self.sha = hashlib.sha256()
        self.count = 0
        self._buf = memoryview(b"")
        self._eof = False
        self.limit = limit

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        if self._eof:
            return
        want = self.chunk
        if self.limit is not None:
            want = min(want, self.limit - self.count - len(self._buf) + 1)  # +1 detects overlong objects
        data = self.raw.read(max(want, 1))
        if not data:
            self._eof = True
            return
        self._buf = memoryview(data)

    def readinto(self, b) -> int:
        if not self._buf:
            self._fill()
            if not self._buf:
                return 0
        n = min(len(b), len(self._buf))
        piece = self._buf[:n]
        b[:n] = piece
        self.sha.update(piece)
        self.count += n
        self._buf = self._buf[n:]
        return n

    def drain(self) -> None:
        buf = bytearray(READ_CHUNK)
        while self.readinto(buf):
            pass
