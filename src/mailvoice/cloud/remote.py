"""What a cloud job leaves in the bucket, beside the vault's encrypted backups.

``<prefix>/<user>/cloud/<job>.json`` is the job's public status (no mail, no keys: state, step,
backup ids, measured tokens/s), written by the on-host script at each phase and read by
``cloud status`` and ``cloud fetch``. The vault never lists it (it is not a backup folder).
A job's checkpoints are the vault's incremental backups whose files all lie under
``runs/<job>/``; the newest by step is what a re-provisioned host resumes from.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass

from ..vault import BackupInfo, Vault, list_backups
from ..vault.store import Store
from ..workspace import validate_user_id

FORMAT = "mailvoice-cloud/1"
_STEP = re.compile(r"^runs/([^/]+)/checkpoint-(\d+)/")


def status_key(user_id: str, job: str) -> str:
    # validated, so a call with the user and the destination swapped fails instead of writing
    # "<user>/s3:/bucket/…" into the working directory
    return f"{validate_user_id(user_id)}/cloud/{job}.json"


def read_status(user_id: str, dest_url: str, job: str, storage_options=None) -> dict | None:
    store = Store(dest_url, storage_options)
    store.invalidate()
    try:
        data = json.loads(store.read_bytes(status_key(user_id, job)))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        return {"state": "unreadable"}
    return data if isinstance(data, dict) and data.get("format") == FORMAT else {"state": "unreadable"}


def write_status(user_id: str, dest_url: str, job: str, storage_options=None, **fields) -> dict:
    old = read_status(user_id, dest_url, job, storage_options) or {}
    if old.get("state") == "unreadable":
        old = {}
    new = {**old, **fields, "format": FORMAT, "user_id": user_id, "job": job,
           "updated_at": _dt.datetime.now(_dt.timezone.utc).isoformat()}
    Store(dest_url, storage_options).write_bytes(status_key(user_id, job), json.dumps(new, indent=1).encode())
    return new


def delete_status(user_id: str, dest_url: str, job: str, storage_options=None) -> None:
    store = Store(dest_url, storage_options)
    try:
        store.fs.rm(store.path(status_key(user_id, job)))
    except FileNotFoundError:
        pass


@dataclass
class JobCheckpoint:
    step: int
    info: BackupInfo


def job_checkpoints(user_id: str, dest_url: str, job: str, storage_options=None) -> list[JobCheckpoint]:
    """This job's complete checkpoint backups, oldest step first."""
    out = []
    for b in list_backups(user_id, dest_url, storage_options=storage_options):
        if b.kind != "incremental":
            continue
        steps = set()
        for f in (b.manifest or {}).get("files", []):
            m = _STEP.match(f.get("path", ""))
            steps.add((m.group(1), int(m.group(2))) if m else None)
        if len(steps) == 1 and None not in steps:
            run, step = steps.pop()
            if run == job:
                out.append(JobCheckpoint(step, b))
    return sorted(out, key=lambda c: (c.step, c.info.created))


def remove_backup(user_id: str, dest_url: str, info: BackupInfo, storage_options=None) -> None:
    Vault(dest_url, storage_options).remove(user_id, info)


def prune_checkpoints(user_id: str, dest_url: str, job: str, keep: int, storage_options=None) -> int:
    """Delete all but the newest ``keep`` checkpoint backups of this job; returns how many went."""
    cks = job_checkpoints(user_id, dest_url, job, storage_options)
    gone = cks[:-keep] if keep > 0 else cks
    for c in gone:
        remove_backup(user_id, dest_url, c.info, storage_options)
    return len(gone)
