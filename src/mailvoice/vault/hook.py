"""The trainer's post-checkpoint hook: each saved checkpoint → an incremental encrypted backup."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import MailvoiceError
from ..workspace import validate_user_id
from . import keys as _keys
from .core import BackupResult, backup


def make_checkpoint_hook(
    dest_url: str,
    user_id: str,
    recipients: Iterable[str] | str | None,
    *,
    passphrase_file: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Callable[[Path], None]:
    """Return ``hook(checkpoint_dir)`` that uploads that folder (parts=checkpoints, kind
    "incremental"). Keys are checked now, so a bad key fails before training starts."""
    validate_user_id(user_id)
    recipients = list(recipients) if recipients is not None and not isinstance(recipients, str) else recipients
    if not _keys.parse_recipients(recipients) and _keys.load_passphrase(passphrase_file) is None:
        raise MailvoiceError("checkpoint backups need a recipient (age1…) or a passphrase: they are always encrypted")
    results: list[BackupResult] = []

    def hook(checkpoint_dir: Path) -> None:
        results.append(
            backup(user_id, dest_url, parts=("checkpoints",), recipients=recipients, passphrase_file=passphrase_file,
                   root=root, storage_options=storage_options, paths=[Path(checkpoint_dir)])
        )

    hook.results = results  # type: ignore[attr-defined]
    return hook
