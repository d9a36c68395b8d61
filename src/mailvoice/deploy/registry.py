"""The workspace's registry of deployed users: ``<root>/<user>/models/emailai-<user>/deploy.json``.

One record per user (user → model name, base, adapter digest, evaluation scores, deployed at,
where it was created, and ``emails``: the account addresses EmailAI drafts as, which the gateway
routes to this user). A record is written only after the model exists on the server and
answered the probe, so the registry never lists a half-created model.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ..artifacts import RECORDS
from ..errors import MailvoiceError
from ..workspace import resolve_root, user_space, write_json
from .modelfile import model_name

RECORD = "deploy.json"
# local@domain.tld: no spaces, brackets, commas or quotes; a dotted domain with a letter TLD
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}")
# records.jsonl is written with sort_keys and json's default separators: one flat object a line,
# so a top-level key can be read without parsing the (large) bodies
_FROM_ADDR = re.compile(r'"from_addr": "((?:[^"\\]|\\.)*)"')
_EMAILAI_SOURCE = re.compile(r'"source": "emailai:((?:[^"\\]|\\.)*)"')


def account_emails(values: Iterable[str], option: str = "--user-email") -> list[str]:
    """Validated, lower-cased, de-duplicated account addresses. The error names the position of a
    bad value, never the value (addresses are private data)."""
    out: list[str] = []
    for i, v in enumerate(values, 1):
        e = (v or "").strip().lower()
        if not _EMAIL.fullmatch(e):
            nth = {1: "1st", 2: "2nd", 3: "3rd"}.get(i, f"{i}th")
            raise MailvoiceError(f"{option}: the {nth} value is not an email address (name@example.com)")
        if e not in out:
            out.append(e)
    return out


def dataset_account_emails(data_dir: Path, *, min_share: float = 0.01) -> list[str]:
    """The user's account addresses as their prepared mail knows them (``records.jsonl``): every
    EmailAI account the mail came from (``source: emailai:<account>``) and every sender address
    of at least ``min_share`` of the records (prepare kept only the user's own mail: the
    ``--user-email`` addresses, the EmailAI accounts, or the inferred most frequent sender, plus
    Sent-folder mail, where a rare stray sender is left out by the share). ``[]`` without data."""
    path = Path(data_dir) / RECORDS
    if not path.is_file():
        return []
    senders: Counter = Counter()
    accounts: list[str] = []
    n = 0
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            n += 1
            m = _FROM_ADDR.search(line)
            if m:
                sender, src = m.group(1), _EMAILAI_SOURCE.search(line)
                src = src.group(1) if src else ""
            else:  # written some other way: parse it
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                sender, src = str(rec.get("from_addr") or ""), str(rec.get("source") or "")
                src = src[len("emailai:"):] if src.startswith("emailai:") else ""
            senders[sender.strip().lower()] += 1
            a = src.strip().lower()
            if a and a not in accounts:
                accounts.append(a)
    floor = max(1, int(n * min_share))
    found = accounts + [e for e, c in senders.most_common() if c >= floor and e not in accounts]
    return [e for e in found if _EMAIL.fullmatch(e)]


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
