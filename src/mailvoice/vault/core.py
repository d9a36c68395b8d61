"""Backup, list, verify and restore: tar → age (pyrage, streaming) → fsspec storage.

Backup streams: files are read, hashed and framed as tar on demand (``TarStream``), pyrage's
``encrypt_io`` pulls from that stream and pushes ciphertext into the destination writer (a
multipart upload on S3), so no plaintext temporary file ever exists. Restore runs pyrage's
``decrypt_io`` in a thread writing into an OS pipe; the tar reader on the other end checks each
member and writes it into a private staging folder inside the user space; only once the whole
ciphertext has authenticated and every digest matched are files moved into place.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pyrage

from .. import __version__
from ..artifacts import IMAP_STATE, RECORDS
from ..errors import MailvoiceError
from ..workspace import UserSpace, make_private_dir, sha256_file, user_space, validate_user_id
from . import keys as _keys
from .audit import audit
from .manifest import (
    ARCHIVE_ENC,
    ARCHIVE_PLAIN,
    FORMAT,
    KEY_OBJECT,
    MANIFEST,
    PARTS,
    check_seal,
    is_sealed,
    parse_manifest,
    sealed_view,
)
from .manifest import FOLDER_RE as _FOLDER
from .retention import delete_backed_up
from .store import HashingReader, Store, discard
from .tarstream import FileEntry, TarStream, check_relpath, is_regular, read_archive

log = logging.getLogger("mailvoice.vault")

# Files of data/ that hold raw mail (every card number, SSN and password as received) or only
# make sense beside it: ``prepare`` writes records.jsonl to merge the next run incrementally
# and imap-state.json to fetch only new UIDs (without records.jsonl it would skip old mail).
# Training never reads them, so backups leave both out unless ``include_records=True``.
RAW_DATA = (f"data/{RECORDS}", f"data/{IMAP_STATE}")
_CONFIG_SUFFIXES = (".json", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".ini")


class UnencryptedBackupWarning(UserWarning):
    """Emitted for every ``no_encrypt=True`` backup: the archive holds the user's mail in clear."""


# --------------------------------------------------------------------------- results


@dataclass
class BackupInfo:
    folder: str
    backup_id: str
    created: str
    complete: bool
    manifest: dict | None = None
    reason: str = ""

    @property
    def kind(self) -> str:
        return (self.manifest or {}).get("kind", "?")


@dataclass
class BackupResult:
    backup_id: str
    folder: str
    location: str
    encrypted: bool
    files: int
    bytes: int
    archive_size: int
    archive_sha256: str
    manifest: dict
    deleted: list[dict] = field(default_factory=list)


@dataclass
class VerifyResult:
    backup_id: str
    folder: str
    archive_size: int
    archive_sha256: str
    files_checked: int  # 0 when the archive could only be checked as a whole (no identity)
    decrypted: bool
    sealed: bool = False  # the manifest matched the copy sealed in the decrypted archive


@dataclass
class RestoreResult:
    backup_id: str
    folder: str
    files: int
    bytes: int
    replaced: int
    paths: list[str]


# --------------------------------------------------------------------------- selection


def _walk_files(space: UserSpace, top: Path, part: str) -> list[FileEntry]:
    out: list[FileEntry] = []
    if not top.exists() and not top.is_symlink():
        return out
    if top.is_symlink() or not top.is_dir():
        raise MailvoiceError(f"{top.relative_to(space.path)} is a link or not a folder; refusing to back it up")
    base = os.path.realpath(space.path)
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            src = Path(dirpath) / name
            st = os.lstat(src)
            if not is_regular(src):
                log.warning("skipping non-regular file %s", src.relative_to(space.path))
                continue
            real = os.path.realpath(src)
            if not real.startswith(base + os.sep):
                continue  # never leave this user's space
            rel = src.relative_to(space.path).as_posix()
            out.append(FileEntry(check_relpath(rel), src, st.st_size, st.st_mtime, part))
    return out


def select_files(
    space: UserSpace,
    parts: Sequence[str],
    paths: Sequence[os.PathLike] | None = None,
    *,
    include_records: bool = False,
    data_files: Sequence[str] | None = None,
) -> list[FileEntry]:
    """The files of the chosen parts, relative to the user space (or only below ``paths``).

    The ``data`` part leaves out the raw records (``RAW_DATA``) unless ``include_records``;
    ``data_files`` (names relative to ``data/``, a folder meaning all below it) narrows it to
    just those, e.g. the training files a rented GPU host needs."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise MailvoiceError(f"unknown backup part(s) {unknown}: choose from {', '.join(PARTS)}")
    entries: list[FileEntry] = []
    if paths is not None:
        real_runs = os.path.realpath(space.runs)
        for p in paths:
            p = Path(p).absolute()
            real = os.path.realpath(p)
            if not real.startswith(real_runs + os.sep) or not p.name.startswith("checkpoint-"):
                raise MailvoiceError("an incremental backup takes a runs/<run>/checkpoint-* folder of this user")
            entries += _walk_files(space, space.path / Path(real).relative_to(os.path.realpath(space.path)), "checkpoints")
    else:
        for part in parts:
            if part == "data":
                entries += _data_files(space, include_records, data_files)
            elif part == "eval":
                entries += _walk_files(space, space.eval, "eval")
            elif part == "checkpoints":
                for c in space.checkpoint_dirs():
                    entries += _walk_files(space, c, "checkpoints")
            elif part == "model":
                for r in space.run_dirs():
                    if (r / "final").is_dir():
                        entries += _walk_files(space, r / "final", "model")
                entries += _walk_files(space, space.models, "model")
            elif part == "configs":
                for r in space.run_dirs():
                    for f in sorted(r.iterdir()):
                        if f.suffix.lower() in _CONFIG_SUFFIXES and is_regular(f):
                            st = f.lstat()
                            entries.append(FileEntry(f.relative_to(space.path).as_posix(), f, st.st_size, st.st_mtime, "configs"))
                entries += _walk_files(space, space.path / "configs", "configs")
    seen: set[str] = set()
    unique = []
    for e in entries:
        if e.path not in seen:
            seen.add(e.path)
            unique.append(e)
    return unique


def _data_files(space: UserSpace, include_records: bool, only: Sequence[str] | None) -> list[FileEntry]:
    if only is None:
        entries = _walk_files(space, space.data, "data")
    else:
        entries = []
        base = os.path.realpath(space.data)
        for name in only:
            p = space.data / name
            real = os.path.realpath(p)
            if not real.startswith(base + os.sep) or os.path.islink(p):
                raise MailvoiceError(f"{name!r} is not a file inside this user's data folder")
            if p.is_dir():
                entries += _walk_files(space, p, "data")
            elif is_regular(p):
                st = p.lstat()
                rel = p.relative_to(space.path).as_posix()
                entries.append(FileEntry(check_relpath(rel), p, st.st_size, st.st_mtime, "data"))
            else:
                raise MailvoiceError(f"data/{name} not found: run prepare first")
    if not include_records:
        entries = [e for e in entries if e.path not in RAW_DATA]
    return entries


# --------------------------------------------------------------------------- backup


class _HashingWriter:
    def __init__(self, fh):
        self.fh = fh
        self.sha = hashlib.sha256()
        self.count = 0

    def write(self, b) -> int:
        self.sha.update(b)
        self.count += len(b)
        self.fh.write(b)
        return len(b)

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True


class _SafeTarStream(TarStream):
    """Keeps our own error when pyrage wraps a reader failure in its EncryptError."""

    error: BaseException | None = None

    def readinto(self, b) -> int:
        try:
            return super().readinto(b)
        except BaseException as exc:
            self.error = exc
            raise


def _now_folder() -> tuple[str, str, _dt.datetime]:
    now = _dt.datetime.now(_dt.timezone.utc)
    bid = secrets.token_hex(6)
    return f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{bid}", bid, now


def _redact(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//", url)


def backup(
    user_id: str,
    dest_url: str,
    *,
    parts: Sequence[str] = PARTS,
    recipients: Iterable[str] | str | None = None,
    passphrase_file: str | os.PathLike | None = None,
    no_encrypt: bool = False,
    cleanup: bool = False,
    root: str | os.PathLike | None = None,
    storage_options: dict[str, Any] | None = None,
    paths: Sequence[os.PathLike] | None = None,
    include_records: bool = False,
    data_files: Sequence[str] | None = None,
) -> BackupResult:
    """Stream the chosen parts of one user's space, encrypted, to ``dest_url``; verify; optionally
    delete the local data and checkpoints that the verified backup holds (``cleanup=True``).

    ``data/records.jsonl`` (raw mail) and its IMAP state stay out unless ``include_records``;
    ``data_files`` limits the data part to those names (see ``select_files``)."""
    space = user_space(user_id, root)
    if not space.exists():
        raise MailvoiceError(f"no workspace for user {user_id!r}")
    parts = tuple(dict.fromkeys(parts))
    entries = select_files(space, parts, paths, include_records=include_records, data_files=data_files)
    if not entries:
        raise MailvoiceError(f"nothing to back up for user {user_id!r} in parts {', '.join(parts)}")

    recips = _keys.parse_recipients(recipients)
    passphrase = _keys.load_passphrase(passphrase_file, env=not recips)
    if no_encrypt:
        if recips or passphrase_file is not None:
            raise MailvoiceError("no_encrypt cannot be combined with recipients or a passphrase")
        msg = (
            "WARNING: this backup is NOT encrypted: anyone who can read the destination can read "
            "this user's mail and model"
        )
        warnings.warn(msg, UnencryptedBackupWarning, stacklevel=2)
        log.warning(msg)
        passphrase = None
    elif not recips and passphrase is None:
        raise MailvoiceError(
            f"no recipient: give an age public key (age1…), set ${_keys.ENV_PASSPHRASE}, "
            "give a passphrase file, or choose --no-encrypt"
        )

    store = Store(dest_url, storage_options)
    folder, bid, now = _now_folder()
    rel = f"{user_id}/{folder}"
    archive_name = ARCHIVE_PLAIN if no_encrypt else ARCHIVE_ENC
    recipient_objs = [r for r, _ in recips]
    recipient_info = [_public_info(i) for _, i in recips]
    wrote_anything = False
    try:
        key_object = None
        if passphrase is not None:
            pub, info, wrapped = _keys.wrap_identity(passphrase)
            recipient_objs.append(pub)
            recipient_info.append(_public_info(info))
            wrote_anything = True
            store.write_bytes(f"{rel}/{KEY_OBJECT}", wrapped)
            key_object = KEY_OBJECT

        manifest = {
            "format": FORMAT,
            "user_id": user_id,
            "backup_id": bid,
            "folder": folder,
            "created_at": now.isoformat(),
            "created_ts": now.timestamp(),
            "kind": "incremental" if paths is not None else "full",
            "parts": list(parts),
            "encrypted": not no_encrypt,
            "archive": {"name": archive_name},
            "key_object": key_object,
            "recipients": recipient_info,
            "files": [],  # filled once every file is hashed, just before the seal is written
            "totals": {},
            "tool": {"name": "mailvoice", "version": __version__, "pyrage": _version("pyrage")},
        }

        def seal() -> bytes:
            manifest["files"] = [e.as_dict() for e in entries]
            manifest["totals"] = {"files": len(entries), "bytes": sum(e.size for e in entries)}
            return json.dumps(sealed_view(manifest), indent=1).encode()

        stream = _SafeTarStream(entries, seal)
        fh = store.open_write(f"{rel}/{archive_name}")
        wrote_anything = True
        hw = _HashingWriter(fh)
        try:
            if no_encrypt:
                shutil.copyfileobj(stream, hw, 4 * 2**20)
            else:
                try:
                    pyrage.encrypt_io(stream, hw, recipient_objs)
                except Exception as exc:
                    if stream.error is not None:
                        raise stream.error from None
                    if isinstance(exc, MailvoiceError):
                        raise
                    raise MailvoiceError(f"encryption or upload failed ({type(exc).__name__})") from None
        except BaseException:
            discard(fh)
            raise
        try:
            fh.close()
        except Exception as exc:
            raise MailvoiceError(f"upload failed while finishing the archive ({type(exc).__name__})") from None
        size, digest = hw.count, hw.sha.hexdigest()
        _verify_object(store, f"{rel}/{archive_name}", size, digest)

        manifest["archive"] = {"name": archive_name, "size": size, "sha256": digest}
        raw = json.dumps(manifest, indent=1).encode()
        parse_manifest(raw, user_id=user_id, folder=folder)  # never write one that restore would refuse
        # written last: only now does the backup exist
        store.write_bytes(f"{rel}/{MANIFEST}", raw)
    except BaseException:
        if wrote_anything:
            try:
                store.rm_tree(rel)
            except Exception:
                pass
        raise

    total = manifest["totals"]["bytes"]
    audit(space, "backup", paths=len(entries), bytes=total, backup_id=bid, encrypted=not no_encrypt,
          kind=manifest["kind"], archive_bytes=size)
    result = BackupResult(bid, folder, _redact(f"{dest_url.rstrip('/')}/{rel}"), not no_encrypt, len(entries), total,
                          size, digest, manifest)
    if cleanup:
        result.deleted = delete_backed_up(space, manifest)
    return result


def _public_info(info: _keys.RecipientInfo) -> dict:
    """A recipient as the manifest names it: type and fingerprint, never the public key itself.
    With the key, anyone who can write to the storage could encrypt a forged archive to it."""
    return {"type": info.type, "fingerprint": _keys.fingerprint(info.public_key)}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _verify_object(store: Store, rel: str, size: int, digest: str, after_upload: bool = True) -> None:
    """Read the object back: size and sha256 must match what was sent (or what the manifest says)."""
    bad = ("uploaded archive reads back differently from what was sent: upload not trusted" if after_upload
           else "backup archive does not match its manifest (truncated, corrupted or tampered with)")
    got = store.size(rel)
    if got != size:
        raise MailvoiceError(bad)
    raw = store.open_read(rel)
    try:
        hr = HashingReader(raw)
        hr.drain()
    finally:
        raw.close()
    if hr.count != size or hr.sha.hexdigest() != digest:
        raise MailvoiceError(bad)


# --------------------------------------------------------------------------- listing


def list_backups(
    user_id: str,
    dest_url: str,
    *,
    storage_options: dict[str, Any] | None = None,
    include_incomplete: bool = False,
) -> list[BackupInfo]:
    """This user's backups, oldest first; complete ones only unless ``include_incomplete``."""
    validate_user_id(user_id)
    store = Store(dest_url, storage_options)
    return _list(store, user_id, include_incomplete)


def _list(store: Store, user_id: str, include_incomplete: bool) -> list[BackupInfo]:
    out = []
    for folder in store.ls_dirs(user_id):
        m = _FOLDER.match(folder)
        if not m:
            continue
        info = BackupInfo(folder, m.group(2), m.group(1), False)
        try:
            raw = store.read_bytes(backup_object(user_id, folder, MANIFEST))
        except FileNotFoundError:
            info.reason = "no manifest (interrupted or still uploading)"
        else:
            try:
                info.manifest, info.complete = parse_manifest(raw, user_id=user_id, folder=folder), True
            except MailvoiceError as exc:
                info.reason = str(exc)
        if info.complete or include_incomplete:
            out.append(info)
    return out


def backup_object(user_id: str, folder: str, name: str) -> str:
    """The key of one object of one backup: always inside ``<prefix>/<user_id>/<folder>/``."""
    validate_user_id(user_id)
    if not _FOLDER.match(folder) or name not in (ARCHIVE_ENC, ARCHIVE_PLAIN, KEY_OBJECT, MANIFEST):
        raise MailvoiceError("refusing a backup object outside this user's backup folder")
    return f"{user_id}/{folder}/{name}"


def _resolve(store: Store, user_id: str, backup_id: str | None, kind: str | None) -> BackupInfo:
    every = _list(store, user_id, True)
    complete = [i for i in every if i.complete]
    if backup_id:
        for info in every:
            if backup_id in (info.backup_id, info.folder):
                if not info.complete:
                    raise MailvoiceError(f"backup {info.backup_id}: {info.reason}")
                return info
        raise MailvoiceError(f"no complete backup {backup_id!r} for user {user_id!r}")
    if kind in (None, "full"):
        full = [i for i in complete if i.kind == "full"]
        if full or kind == "full":
            complete = full
    elif kind == "incremental":
        complete = [i for i in complete if i.kind == "incremental"]
    elif kind != "any":
        raise MailvoiceError("kind must be full, incremental or any")
    newest = complete[-1].folder if complete else ""
    for skipped in (i for i in every if not i.complete and i.folder > newest and i.reason.startswith("invalid")):
        log.warning("passing over backup %s: %s", skipped.backup_id, skipped.reason)
    if not complete:
        bad = [i for i in every if i.manifest is None and i.reason.startswith("invalid manifest")]
        why = f" (newest refused: {bad[-1].backup_id}: {bad[-1].reason})" if bad else ""
        raise MailvoiceError(f"no complete backup for user {user_id!r} at {_redact(store.url)}{why}")
    return complete[-1]


def latest_backup(
    user_id: str,
    dest_url: str,
    *,
    kind: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> BackupInfo:
    """The newest complete backup (``kind=None``: newest full one, else newest incremental)."""
    validate_user_id(user_id)
    return _resolve(Store(dest_url, storage_options), user_id, None, kind)


# --------------------------------------------------------------------------- decrypting


class _Plaintext:
    """The tar stream of a backup: straight from storage, or out of pyrage in a thread."""

    def __init__(self, store: Store, info: BackupInfo, user_id: str, identities: list):
        manifest = self.manifest = info.manifest
        self.raw = store.open_read(backup_object(user_id, info.folder, manifest["archive"]["name"]))
        self.src = HashingReader(self.raw, limit=int(manifest["archive"]["size"]))
        self.thread = None
        self.error: BaseException | None = None
        self.aborted = False
        if not manifest["encrypted"]:
            self.stream = self.src
            return
        rfd, wfd = os.pipe()
        try:
            fcntl.fcntl(wfd, 1031, 2**20)  # F_SETPIPE_SZ: fewer context switches
        except OSError:
            pass
        self.stream = os.fdopen(rfd, "rb", buffering=2**20)
        self._w = os.fdopen(wfd, "wb", buffering=2**20)
        self.thread = threading.Thread(target=self._decrypt, args=(identities,), daemon=True)
        self.thread.start()

    def _decrypt(self, identities) -> None:
        try:
            pyrage.decrypt_io(self.src, self._w, identities)
            self._w.flush()
        except BaseException as exc:
            if not self.aborted:
                self.error = exc
        finally:
            try:
                self._w.close()
            except Exception:
                pass

    def finish(self) -> None:
        """Read to the end, wait for the decryptor; raise if anything failed authentication."""
        buf = bytearray(2**20)
        if self.thread is None:
            self.src.drain()
        else:
            while self.stream.readinto(buf):
                pass
            self.thread.join()
            self.stream.close()
        self.raw.close()
        self._raise_crypto()
        a = self.manifest["archive"]
        if self.src.count != int(a["size"]) or self.src.sha.hexdigest() != a["sha256"]:
            raise MailvoiceError("backup archive does not match its manifest (truncated or tampered with)")

    def abort(self) -> None:
        """Stop early; raise the decryptor's error if it failed first (it explains the rest)."""
        if self.thread is not None:
            if self.thread.is_alive() and self.error is None:
                self.aborted = True
            try:
                self.stream.close()
            except Exception:
                pass
            self.thread.join()
        try:
            self.raw.close()
        except Exception:
            pass
        self._raise_crypto()

    def _raise_crypto(self) -> None:
        exc = self.error
        if exc is None:
            return
        text = str(exc)
        if "No matching keys" in text:
            raise MailvoiceError("cannot decrypt backup: wrong key (no identity matches its recipients)") from None
        if isinstance(exc, (pyrage.DecryptError, OSError)):
            raise MailvoiceError("backup archive failed authentication: truncated or tampered with") from None
        raise MailvoiceError(f"decryption failed ({type(exc).__name__})") from None


def _identities_for(store: Store, info: BackupInfo, user_id: str, identity_file, passphrase_file) -> list:
    ids = list(_keys.load_identities(identity_file))
    if info.manifest["key_object"]:
        passphrase = _keys.load_passphrase(passphrase_file)
        if passphrase is not None:
            try:
                wrapped = store.read_bytes(backup_object(user_id, info.folder, KEY_OBJECT))
            except FileNotFoundError:
                raise MailvoiceError("backup's key object is missing") from None
            ids += _keys.unwrap_identity(wrapped, passphrase)
    return ids


def _expected(manifest: dict) -> dict[str, dict]:
    return {check_relpath(f["path"]): f for f in manifest["files"]}  # the schema has checked each


def _check_trust(info: BackupInfo, allow_plaintext: bool) -> None:
    """Only a sealed (encrypted, format 2) manifest can be trusted without being told to."""
    m = info.manifest
    if allow_plaintext or (m["encrypted"] and is_sealed(m)):
        return
    what = "is NOT encrypted" if not m["encrypted"] else "has an unsealed manifest (made before mailvoice-vault/2)"
    raise MailvoiceError(
        f"backup {info.backup_id} {what}: anyone with write access to the storage could have forged it; "
        "restore it only if you made it and trust the storage, with --allow-plaintext"
    )


def _read(pt: _Plaintext, info: BackupInfo, staging: Path | None) -> list:
    """Members checked (and staged); then the whole stream authenticated; then the seal."""
    sealed = is_sealed(info.manifest)
    contents = read_archive(pt.stream, _expected(info.manifest), staging, seal=sealed)
    pt.finish()
    if sealed:
        check_seal(info.manifest, contents.seal)
    return contents.files


def _check_archive_size(store: Store, info: BackupInfo, user_id: str) -> None:
    manifest = info.manifest
    got = store.size(backup_object(user_id, info.folder, manifest["archive"]["name"]))
    if got is None:
        raise MailvoiceError("backup archive object is missing")
    if got != int(manifest["archive"]["size"]):
        raise MailvoiceError("backup archive is truncated or was replaced (size differs from its manifest)")


def _open(
    store: Store, user_id: str, backup_id: str | None, identity_file, passphrase_file, *,
    allow_plaintext: bool | None = None,
) -> tuple[BackupInfo, list]:
    """The backup to read (the newest full one unless ``backup_id``), trusted if restore asks
    (``allow_plaintext`` given), its archive size checked, and the identities that open it."""
    info = _resolve(store, user_id, backup_id, "any" if backup_id else None)
    if allow_plaintext is not None:
        _check_trust(info, allow_plaintext)
    _check_archive_size(store, info, user_id)
    ids = _identities_for(store, info, user_id, identity_file, passphrase_file) if info.manifest["encrypted"] else []
    return info, ids


# --------------------------------------------------------------------------- verify


def verify_backup(
    user_id: str,
    dest_url: str,
    backup_id: str | None = None,
    *,
    identity_file: str | os.PathLike | None = None,
    passphrase_file: str | os.PathLike | None = None,
    storage_options: dict[str, Any] | None = None,
) -> VerifyResult:
    """Re-check a backup's size and sha256; with a key (or unencrypted), every file's digest too."""
    validate_user_id(user_id)
    store = Store(dest_url, storage_options)
    info, ids = _open(store, user_id, backup_id, identity_file, passphrase_file)
    manifest = info.manifest
    a = manifest["archive"]
    if manifest["encrypted"] and not ids:
        _verify_object(store, backup_object(user_id, info.folder, a["name"]), int(a["size"]), a["sha256"], after_upload=False)
        return VerifyResult(info.backup_id, info.folder, int(a["size"]), a["sha256"], 0, False)
    pt = _Plaintext(store, info, user_id, ids)
    try:
        seen = _read(pt, info, None)
    except BaseException:
        pt.abort()
        raise
    return VerifyResult(info.backup_id, info.folder, int(a["size"]), a["sha256"], len(seen), True,
                        sealed=manifest["encrypted"] and is_sealed(manifest))


# --------------------------------------------------------------------------- restore


def restore(
    user_id: str,
    dest_url: str,
    *,
    backup_id: str | None = None,
    identity_file: str | os.PathLike | None = None,
    passphrase_file: str | os.PathLike | None = None,
    force: bool = False,
    root: str | os.PathLike | None = None,
    storage_options: dict[str, Any] | None = None,
    allow_plaintext: bool = False,
) -> RestoreResult:
    """Restore the latest complete backup (or ``backup_id``) into the user's space.

    Everything is decrypted and checked into a private staging folder first; on any error
    (wrong key, tampered or truncated object, unsafe member, a manifest that differs from its
    sealed copy) nothing is moved into place. Local files newer than the backup and different
    from it need ``force=True``. A plaintext or unsealed backup needs ``allow_plaintext=True``:
    its manifest cannot be authenticated.
    """
    space = user_space(user_id, root)
    store = Store(dest_url, storage_options)
    info, ids = _open(store, user_id, backup_id, identity_file, passphrase_file, allow_plaintext=allow_plaintext)
    manifest = info.manifest
    expected = _expected(manifest)
    if manifest["encrypted"] and not ids:
        how = "a passphrase" if manifest["key_object"] else "an identity file"
        raise MailvoiceError(f"backup is encrypted: give {how} (or set ${_keys.ENV_IDENTITY})")

    space.ensure()
    conflicts, replaced = _conflicts(space, expected, float(manifest["created_ts"]))
    if conflicts and not force:
        raise MailvoiceError(
            f"{conflicts} local file(s) are newer than backup {info.backup_id} and differ from it: "
            "use --force to overwrite them"
        )

    staging = Path(tempfile.mkdtemp(prefix=".vault-restore-", dir=space.path))
    os.chmod(staging, 0o700)
    try:
        pt = _Plaintext(store, info, user_id, ids)
        try:
            seen = _read(pt, info, staging)
        except BaseException:
            pt.abort()
            raise
        moved = []
        for item in seen:
            src = staging.joinpath(*item.path.split("/"))
            dst = space.path.joinpath(*item.path.split("/"))
            make_private_dir(dst.parent)
            if dst.is_symlink() or dst.is_dir():
                raise MailvoiceError(f"cannot restore {item.path}: a link or folder is in the way")
            os.replace(src, dst)
            mtime = expected[item.path].get("mtime")
            if isinstance(mtime, (int, float)):
                os.utime(dst, (mtime, mtime))
            moved.append(item.path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    total = sum(s.size for s in seen)
    audit(space, "restore", paths=len(moved), bytes=total, backup_id=info.backup_id, replaced=replaced)
    return RestoreResult(info.backup_id, info.folder, len(moved), total, replaced, moved)


def _conflicts(space: UserSpace, expected: dict[str, dict], created_ts: float) -> tuple[int, int]:
    base = os.path.realpath(space.path)
    conflicts = replaced = 0
    for name, f in expected.items():
        dst = space.path.joinpath(*name.split("/"))
        parent_real = os.path.realpath(dst.parent)
        if parent_real != base and not parent_real.startswith(base + os.sep):
            raise MailvoiceError(f"cannot restore {name}: its folder is a link out of the user space")
        if not os.path.lexists(dst):
            continue
        if dst.is_symlink() or not dst.is_file():
            raise MailvoiceError(f"cannot restore {name}: a link or folder is in the way")
        st = dst.stat()
        same = st.st_size == int(f["size"]) and sha256_file(dst) == f["sha256"]
        if same:
            continue
        replaced += 1
        if st.st_mtime > created_ts + 1:
            conflicts += 1
    return conflicts, replaced



