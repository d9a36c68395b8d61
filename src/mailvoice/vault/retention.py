"""Cleanup and retention of a user's local sensitive data.

Deletion overwrites a file's contents with zeros (and fsyncs) before unlinking it. That is a
best effort only: on SSDs (wear levelling), copy-on-write or snapshotting filesystems (btrfs,
ZFS, APFS), journalled data, and cloud volumes, old blocks can survive. Use full-disk
encryption for a real guarantee.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MailvoiceError
from ..workspace import UserSpace, user_space
from .audit import audit
from .tarstream import is_regular

_ZERO = b"\0" * 2**20


@dataclass
class PlanItem:
    path: str  # relative to the user space
    size: int
    reason: str

    def as_dict(self) -> dict:
        return {"path": self.path, "size": self.size, "reason": self.reason}


@dataclass
class CleanupPlan:
    user_id: str
    dry_run: bool
    items: list[PlanItem] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # folders deliberately kept (relative)

    @property
    def total_bytes(self) -> int:
        return sum(i.size for i in self.items)

    @property
    def paths(self) -> list[str]:
        return [i.path for i in self.items]


def secure_delete(path: Path) -> int:
    """Overwrite a regular file with zeros, fsync, truncate, unlink. Returns the bytes it held."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not is_regular(path):
        os.unlink(path)  # a link: remove the link, never touch its target
        return 0
    size = st.st_size
    if st.st_nlink > 1:
        os.unlink(path)  # another name shares these blocks: overwriting would destroy it
        return size
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        fd = None
    if fd is not None:
        try:
            left = size
            while left:
                n = os.write(fd, _ZERO[: min(len(_ZERO), left)])
                left -= n
            os.fsync(fd)
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            os.close(fd)
    os.unlink(path)
    return size


def _files_under(space: UserSpace, top: Path, reason: str) -> list[PlanItem]:
    if not top.is_dir() or top.is_symlink():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            size = os.lstat(p).st_size if is_regular(p) else 0
            out.append(PlanItem(p.relative_to(space.path).as_posix(), size, reason))
    return out


def _newest_mtime(top: Path) -> float:
    newest = os.lstat(top).st_mtime
    for dirpath, _dirs, files in os.walk(top, followlinks=False):
        for f in files:
            newest = max(newest, os.lstat(os.path.join(dirpath, f)).st_mtime)
    return newest


def plan_cleanup(space: UserSpace, *, keep_model: bool, delete_model: bool, checkpoint_days: float) -> CleanupPlan:
    if checkpoint_days < 0:
        raise MailvoiceError("checkpoint_days must be 0 or more")
    plan = CleanupPlan(space.user_id, True)
    plan.items += _files_under(space, space.data, "training data")
    cutoff = time.time() - checkpoint_days * 86400
    for c in space.checkpoint_dirs():
        rel = c.relative_to(space.path).as_posix()
        if keep_model or _newest_mtime(c) >= cutoff:
            plan.kept.append(rel)
        else:
            plan.items += _files_under(space, c, f"checkpoint older than {checkpoint_days:g} days")
    finals = [r / "final" for r in space.run_dirs() if (r / "final").is_dir()] + [space.models]
    for top in finals:
        if not top.is_dir():
            continue
        rel = top.relative_to(space.path).as_posix()
        if delete_model and not keep_model:
            plan.items += _files_under(space, top, "final model (asked)")
        else:
            plan.kept.append(rel)
    return plan


def cleanup(
    user_id: str,
    keep_model: bool = False,
    dry_run: bool = False,
    checkpoint_days: float = 30,
    *,
    delete_model: bool = False,
    root: str | os.PathLike | None = None,
) -> CleanupPlan:
    """Delete this user's training data and checkpoints older than ``checkpoint_days``.

    The final model (runs/*/final, models/) is kept unless ``delete_model=True``;
    ``keep_model=True`` keeps every model artefact, checkpoints included (only data goes).
    ``dry_run=True`` deletes nothing and returns the same plan.
    """
    space = user_space(user_id, root)
    if not space.exists():
        raise MailvoiceError(f"no workspace for user {user_id!r}")
    plan = plan_cleanup(space, keep_model=keep_model, delete_model=delete_model, checkpoint_days=checkpoint_days)
    plan.dry_run = dry_run
    if dry_run:
        return plan
    freed = 0
    for item in plan.items:
        freed += secure_delete(space.path / item.path)
    _prune_empty(space, plan.items)
    audit(space, "cleanup", paths=len(plan.items), bytes=freed, checkpoint_days=checkpoint_days,
          keep_model=keep_model, delete_model=delete_model)
    return plan


def _prune_empty(space: UserSpace, items) -> None:
    """Remove folders emptied by a deletion (never the part folders themselves)."""
    keep = {space.path / p for p in ("data", "runs", "models", "eval")} | {space.path}
    dirs = sorted({(space.path / i.path).parent for i in items}, key=lambda p: len(p.parts), reverse=True)
    for d in dirs:
        while d not in keep and space.path in d.parents:
            try:
                d.rmdir()
            except OSError:
                break
            d = d.parent


def delete_backed_up(space: UserSpace, manifest: dict) -> list[dict]:
    """After a verified backup: delete the data/ and checkpoint files it holds, if unchanged since."""
    if manifest.get("user_id") != space.user_id:
        raise MailvoiceError("refusing to clean up: the backup belongs to another user")
    items = []
    for f in manifest["files"]:
        if f["part"] not in ("data", "checkpoints"):
            continue
        p = space.path / f["path"]
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if not is_regular(p) or st.st_size != f["size"] or st.st_mtime != f["mtime"]:
            continue  # changed since it was backed up: keep it
        items.append(PlanItem(f["path"], f["size"], "backed up"))
    freed = sum(secure_delete(space.path / i.path) for i in items)
    _prune_empty(space, items)
    audit(space, "delete-after-backup", paths=len(items), bytes=freed, backup_id=manifest["backup_id"])
    return [i.as_dict() for i in items]
