"""The vault as one object: a destination and how to reach it, every operation user first.

``Vault(dest, storage_options)`` is what the CLI, the cloud jobs and the training hook hold;
they never assemble a URL, storage options or recipients themselves. The functions of
``core`` stay the implementation (and take the same ``user_id, dest_url`` order).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MailvoiceError
from ..options import Method  # the CLI's --method choices; one definition, no heavy imports
from ..workspace import validate_user_id
from . import core
from . import keys as _keys
from .core import BackupInfo, BackupResult, RestoreResult, VerifyResult
from .hook import make_checkpoint_hook
from .manifest import MANIFEST, PARTS
from .store import ENV_ENDPOINT, Store, storage_options

Hook = Callable[[Path], None]


def destination(bucket: str | None, method: Method | str = Method.s3) -> str:
    """``--method``/``--bucket`` → a destination URL (``s3://name`` → ``s3://name/mailvoice``)."""
    if not bucket:
        raise MailvoiceError("--bucket is required (an S3 bucket name, or a folder for --method local)")
    try:
        method = Method(method)
    except ValueError:
        raise MailvoiceError(f"unknown --method {method!r}: use s3, local or url") from None
    if method is Method.s3:
        name = bucket.removeprefix("s3://").strip("/")
        return f"s3://{name}" if "/" in name else f"s3://{name}/mailvoice"
    return bucket


@dataclass(frozen=True)
class Vault:
    """One backup destination (any fsspec URL) and its fsspec options."""

    dest: str
    storage_options: dict[str, Any] | None = None

    @classmethod
    def open(
        cls,
        bucket: str | None,
        method: Method | str = Method.s3,
        *,
        sse: str | None = None,
        storage_class: str | None = None,
    ) -> Vault:
        """The vault the CLI's ``--method/--bucket`` name; on S3 with the endpoint from
        ``$AWS_ENDPOINT_URL`` and the server-side encryption and storage class asked for."""
        dest = destination(bucket, method)
        if not dest.startswith("s3://"):
            return cls(dest)
        return cls(dest, storage_options(dest, endpoint_url=os.environ.get(ENV_ENDPOINT), sse=sse,
                                         storage_class=storage_class))

    # ----------------------------------------------------------------------- write

    def backup(
        self,
        user_id: str,
        *,
        parts: Sequence[str] = PARTS,
        recipients: Iterable[str] | str | None = None,
        passphrase_file: str | os.PathLike | None = None,
        no_encrypt: bool = False,
        cleanup: bool = False,
        root: str | os.PathLike | None = None,
        include_records: bool = False,
        data_files: Sequence[str] | None = None,
        paths: Sequence[os.PathLike] | None = None,
    ) -> BackupResult:
        """``core.backup`` with the recipients of ``$MAILVOICE_AGE_RECIPIENTS`` when none are
        given, refused before any file is read when there is no key at all."""
        recips = _keys.recipients_or_env(recipients)
        if not (recips or passphrase_file or no_encrypt or os.environ.get(_keys.ENV_PASSPHRASE)):
            raise MailvoiceError(
                "no recipient: pass --recipient age1… (see `mailvoice keys new`), --passphrase-file, or --no-encrypt"
            )
        return core.backup(user_id, self.dest, parts=tuple(parts) or PARTS, recipients=recips or None,
                           passphrase_file=passphrase_file, no_encrypt=no_encrypt, cleanup=cleanup, root=root,
                           storage_options=self.storage_options, paths=paths, include_records=include_records,
                           data_files=data_files)

    def checkpoint_hook(
        self,
        user_id: str,
        recipients: Iterable[str] | str | None = None,
        *,
        passphrase_file: str | os.PathLike | None = None,
        root: str | os.PathLike | None = None,
    ) -> Hook:
        """The trainer's ``on_checkpoint`` hook: each checkpoint → an incremental backup here."""
        return make_checkpoint_hook(self.dest, user_id, _keys.recipients_or_env(recipients) or None,
                                    passphrase_file=passphrase_file, root=root, storage_options=self.storage_options)

    # ----------------------------------------------------------------------- read

    def list(self, user_id: str, *, include_incomplete: bool = False) -> list[BackupInfo]:
        """This user's backups, oldest first (incomplete ones too if asked, with the reason)."""
        return core.list_backups(user_id, self.dest, storage_options=self.storage_options,
                                 include_incomplete=include_incomplete)

    def latest(self, user_id: str, *, kind: str | None = None) -> BackupInfo:
        """The newest complete backup (``kind=None``: the newest full one)."""
        return core.latest_backup(user_id, self.dest, kind=kind, storage_options=self.storage_options)

    def verify(
        self,
        user_id: str,
        backup_id: str | None = None,
        *,
        identity_file: str | os.PathLike | None = None,
        passphrase_file: str | os.PathLike | None = None,
    ) -> VerifyResult:
        return core.verify_backup(user_id, self.dest, backup_id, identity_file=identity_file,
                                  passphrase_file=passphrase_file, storage_options=self.storage_options)

    def restore(
        self,
        user_id: str,
        *,
        backup_id: str | None = None,
        identity_file: str | os.PathLike | None = None,
        passphrase_file: str | os.PathLike | None = None,
        force: bool = False,
        root: str | os.PathLike | None = None,
        allow_plaintext: bool = False,
    ) -> RestoreResult:
        return core.restore(user_id, self.dest, backup_id=backup_id, identity_file=identity_file,
                            passphrase_file=passphrase_file, force=force, root=root,
                            storage_options=self.storage_options, allow_plaintext=allow_plaintext)

    # ----------------------------------------------------------------------- delete

    def remove(self, user_id: str, info: BackupInfo) -> None:
        """Delete one backup: its manifest first, so from that moment it is incomplete and never
        restored, whatever happens to the rest of the folder."""
        validate_user_id(user_id)
        store = Store(self.dest, self.storage_options)
        try:
            store.fs.rm(store.path(core.backup_object(user_id, info.folder, MANIFEST)))
        except FileNotFoundError:
            pass
        store.rm_tree(f"{user_id}/{info.folder}")

    def prune(
        self,
        user_id: str,
        keep: int,
        *,
        kind: str | None = None,
        where: Callable[[BackupInfo], bool] | None = None,
    ) -> list[BackupInfo]:
        """Delete all but the newest ``keep`` complete backups (of ``kind``, matching ``where``);
        returns those deleted."""
        if keep < 0:
            raise MailvoiceError("keep must be 0 or more")
        chosen = [b for b in self.list(user_id) if (kind is None or b.kind == kind) and (where is None or where(b))]
        gone = chosen[:-keep] if keep else chosen
        for b in gone:
            self.remove(user_id, b)
        return gone
