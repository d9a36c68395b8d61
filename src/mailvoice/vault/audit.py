"""``<root>/<user>/audit.log``: one JSON line per vault action (counts and sizes only, never content)."""

from __future__ import annotations

import datetime as _dt
import json
import os

from ..workspace import UserSpace, make_private_dir


def audit(space: UserSpace, action: str, *, paths: int, bytes: int, **extra) -> None:
    make_private_dir(space.path)
    row = {
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "action": action,
        "user_id": space.user_id,
        "paths": int(paths),
        "bytes": int(bytes),
    }
    for k, v in extra.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            row[k] = v
    line = (json.dumps(row, sort_keys=False) + "\n").encode()
    fd = os.open(space.path / "audit.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_audit(space: UserSpace) -> list[dict]:
    p = space.path / "audit.log"
    if not p.is_file():
        return []
    return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
