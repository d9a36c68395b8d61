"""Account email → user → voice model, from the deploy registry (and an optional users map).

An email maps to a user id through, in order: the ``--users-map`` JSON file
(``{"ana@example.com": "ana", …}``), then any address a registry record lists under
``email``/``account_email``/``user_email``/``emails``/``user_emails`` (``mailvoice deploy``
writes ``emails``). An address that the records of two different users both claim goes to
nobody (the base model) unless the users map settles it: no user's drafts are ever written by
another user's model on a guess. A user is given their
voice model (``record["model"]``, ``emailai-<id>``) only when the record is a real deployment
(not a dry run) and its adapter's last evaluation did not fail the gate (``Adapter.gate()``, the
same check as ``deploy --require-eval``: ``<adapter>/evaluation.json`` passed *and* was made of
the adapter's current weights; without one, the record's own ``evaluation.gate``);
``require_eval=True`` also sends users without any evaluation on record to the base model.
Everyone else gets the base model: the request passes through untouched.

The registry is re-read at most every ``refresh_s`` seconds, so a new deployment is picked up
without a restart; lookups between refreshes are a dict access.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import Adapter, find_retrieval
from ..errors import MailvoiceError

log = logging.getLogger("mailvoice.gateway")

EMAIL_KEYS = ("email", "account_email", "user_email", "emails", "user_emails")


@dataclass(frozen=True)
class Route:
    user_id: str | None
    model: str | None  # None → base model (pass through)
    reason: str  # voice | no-user | ambiguous-email | no-model | gate-failed | no-evaluation
    retrieval: str | None = None  # the adapter's retrieval index (prepare --rag): used in its prompts
    prompt: str = "instruction"  # "emailai": the adapter learned EmailAI's own prompt (train_emailai.jsonl)
    emailai_variant: str = "fork"  # which EmailAI prompt it learned (emailai_format.VARIANTS), for prompt="emailai"


def adapter_prompt(adapter, data_dirs=()) -> tuple[str | None, str, str]:
    """(retrieval folder, prompt style, EmailAI variant) the adapter was trained with, from the
    files it carries; the variant is read off the first training row's system text (the training
    file, in ``data_dirs`` when its recorded name is relative), else the fork's."""
    if not adapter:
        return None, "instruction", "fork"
    art = Adapter.find(adapter)
    idx = find_retrieval(adapter)
    train_file = art.train_file if art else None
    style = "emailai" if "emailai" in str(train_file or "") else "instruction"
    variant = _emailai_variant(train_file, data_dirs) if style == "emailai" else "fork"
    return (str(idx) if idx else None), style, variant


def _emailai_variant(train_file, data_dirs=()) -> str:
    from ..dataset.emailai_format import DEFAULT_VARIANT, variant_of_system

    p = Path(train_file)
    for cand in [p] if p.is_absolute() else [Path(d) / p for d in data_dirs]:
        try:
            with open(cand) as fh:
                return variant_of_system(json.loads(fh.readline())["messages"][0]["content"])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue
    return DEFAULT_VARIANT


def load_users_map(path: Path | None) -> dict[str, str]:
    if not path:
        return {}
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise MailvoiceError(f"cannot read users map {p}: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise MailvoiceError(f"users map {p} must be a JSON object of email → user id")
    return {k.strip().lower(): v for k, v in data.items()}


def _gate(record: dict) -> bool | None:
    """True/False: the last evaluation passed/failed the gate; None: no evaluation on record."""
    art = Adapter.find(record.get("adapter"))
    verdict = art.gate() if art else None
    if verdict is not None and verdict.passed is not None:
        return verdict.passed  # a stale (other weights') or unreadable evaluation counts as failed
    ev = record.get("evaluation") or {}
    gate = ev.get("gate") if isinstance(ev, dict) else None
    if isinstance(gate, dict) and "passed" in gate:
        return bool(gate["passed"])
    return None


class UserDirectory:
    def __init__(self, root=None, *, users_map: dict[str, str] | None = None, require_eval: bool = False,
                 refresh_s: float = 10.0, records: list[dict] | None = None):
        self.root, self.users_map = root, dict(users_map or {})
        self.require_eval, self.refresh_s = require_eval, refresh_s
        self._static = records
        self._lock = threading.Lock()
        self._loaded_at = -1e9
        self._by_user: dict[str, Route] = {}
        self._by_email: dict[str, str] = {}
        self._ambiguous: frozenset[str] = frozenset()

    def _records(self) -> list[dict]:
        if self._static is not None:
            return self._static
        from ..deploy import registry

        return registry.list_all(self.root)

    def refresh(self) -> None:
        by_user: dict[str, Route] = {}
        claims: dict[str, set[str]] = {}
        for rec in self._records():
            uid = rec.get("user_id")
            if not uid:
                continue
            if rec.get("dry_run") or not rec.get("model"):
                by_user[uid] = Route(uid, None, "no-model")
            else:
                g = _gate(rec)
                if g is False:
                    by_user[uid] = Route(uid, None, "gate-failed")
                elif g is None and self.require_eval:
                    by_user[uid] = Route(uid, None, "no-evaluation")
                else:
                    data_dirs = [Path(self.root) / uid / "data"] if self.root else []
                    by_user[uid] = Route(uid, rec["model"], "voice", *adapter_prompt(rec.get("adapter"), data_dirs))
            for k in EMAIL_KEYS:
                v = rec.get(k)
                for e in ([v] if isinstance(v, str) else v if isinstance(v, list) else []):
                    if isinstance(e, str) and e.strip():
                        claims.setdefault(e.strip().lower(), set()).add(uid)
        by_email = {e: next(iter(u)) for e, u in claims.items() if len(u) == 1}
        ambiguous = frozenset(e for e, u in claims.items() if len(u) > 1 and e not in self.users_map)
        by_email.update(self.users_map)  # the explicit map wins
        if len(ambiguous) != len(self._ambiguous):  # a count only: addresses are private
            log.warning("%d account address(es) are listed in more than one user's deploy record: they get the "
                        "base model until --users-map names their user", len(ambiguous))
        self._by_user, self._by_email, self._ambiguous = by_user, by_email, ambiguous
        self._loaded_at = time.monotonic()

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._loaded_at > self.refresh_s:
            with self._lock:
                if time.monotonic() - self._loaded_at > self.refresh_s:
                    self.refresh()

    def route_for_email(self, email: str) -> Route:
        self._maybe_refresh()
        key = (email or "").strip().lower()
        uid = self._by_email.get(key)
        if uid is None:
            return Route(None, None, "ambiguous-email" if key in self._ambiguous else "no-user")
        return self._by_user.get(uid) or Route(uid, None, "no-model")

    def route_for_user(self, user_id: str) -> Route:
        self._maybe_refresh()
        return self._by_user.get(user_id) or Route(user_id, None, "no-model")

    def routes(self) -> list[Route]:
        self._maybe_refresh()
        return list(self._by_user.values())

    def summary(self) -> dict:
        self._maybe_refresh()
        voice = sum(1 for r in self._by_user.values() if r.model)
        return {"users": len(self._by_user), "voice_models": voice, "emails": len(self._by_email),
                "ambiguous_emails": len(self._ambiguous)}
