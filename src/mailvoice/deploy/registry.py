"""The workspace's registry of deployed users: ``<root>/<user>/models/emailai-<user>/deploy.json``.

One record per user (user → model name, base, adapter digest, evaluation scores, deployed at,
where it was created). A record is written only after the model exists on the server and
answered the probe, so the registry never lists a half-created model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import MailvoiceError
from ..workspace import resolve_root, user_space, write_json
from .modelfile import model_name

RECORD = "deploy.json"


def record_path(user_id: str, root=None) -> Path:
    return user_space(user_id, root).models / model_name(user_id) / RECORD


def save(record: dict, root=None) -> Path:
    return write_json(record_path(record["user_id"], root), record)


def load(user_id: str, root=None) -> dict:
    p = record_path(user_id, root)
    if not p.is_file():
        raise MailvoiceError(f"no deployed model for user {user_id}")
    return json.loads(p.read_text())


def list_all(root=None) -> list[dict]:
    base = resolve_root(root)
    out = []
    for p in sorted(base.glob(f"*/models/*/{RECORD}")) if base.is_dir() else []:
        try:
            out.append(json.loads(p.read_text()))
        except json.JSONDecodeError:
            continue
    return out


def remove(user_id: str, root=None, *, keep_files: bool = False) -> dict:
    rec = load(user_id, root)
    folder = record_path(user_id, root).parent
    if keep_files:
        record_path(user_id, root).unlink()
    else:
        shutil.rmtree(folder)
    return rec
