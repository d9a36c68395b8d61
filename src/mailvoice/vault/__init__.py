"""The vault: encrypted, verified backups of one user's space, restore, cleanup and retention.

tar (streamed) → age (pyrage) → fsspec storage (s3://, local, …). See docs/vault.md.
``Vault(dest, storage_options)`` is the way in; every function takes ``user_id`` first.
"""

from .core import (
    PARTS,
    BackupInfo,
    BackupResult,
    RestoreResult,
    UnencryptedBackupWarning,
    VerifyResult,
    backup,
    latest_backup,
    list_backups,
    restore,
    select_files,
    verify_backup,
)
from .destination import Method, Vault, destination
from .hook import make_checkpoint_hook
from .keys import ENV_IDENTITY, ENV_PASSPHRASE, ENV_RECIPIENTS, fingerprint, new_identity, public_key_of
from .retention import CleanupPlan, PlanItem, cleanup, secure_delete
from .store import storage_options

__all__ = [
    "PARTS",
    "ENV_IDENTITY",
    "ENV_PASSPHRASE",
    "ENV_RECIPIENTS",
    "BackupInfo",
    "BackupResult",
    "CleanupPlan",
    "Method",
    "PlanItem",
    "RestoreResult",
    "UnencryptedBackupWarning",
    "Vault",
    "VerifyResult",
    "backup",
    "cleanup",
    "destination",
    "fingerprint",
    "latest_backup",
    "list_backups",
    "make_checkpoint_hook",
    "new_identity",
    "public_key_of",
    "restore",
    "secure_delete",
    "select_files",
    "storage_options",
    "verify_backup",
]
