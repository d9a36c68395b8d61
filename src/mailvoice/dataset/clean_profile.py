"""What ``prepare`` learned about one user's mail that cleaning needs, and the training view of one email.

``prepare`` (``build.make_examples``) learns the user's repeated signature blocks from all their mail
(``clean.learn_signatures``), adds the signatures they stored in EmailAI, and protects their own
names from the PII scrubber (``pii.protected_names``). It writes that as ``data/clean-profile.json``
(schema in docs/formats.md) so that ``mailvoice explain --user-id ID FILE.eml`` shows one email exactly
as it would be trained on: the same signatures removed, the same names kept, the same placeholders.

``clean_record`` + ``training_view`` are the one place that turns a record into training text (clean,
then scrub); ``build.make_examples`` (which filters in between) and the ``explain`` command both call them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..clean import Extraction, extract_author_text, html_to_text, learn_signatures
from ..errors import MailvoiceError
from ..sources import parse_message
from ..sources.record import MailRecord
from ..workspace import write_json
from .pii import protected_names, scrub

SCHEMA = 1


@dataclass(frozen=True)
class CleanProfile:
    signatures: tuple[str, ...] = ()  # blocks removed wherever they occur at the end of a message
    protected_names: tuple[str, ...] = ()  # the user's own names: never replaced by the scrubber
    keep_urls: bool = False  # DatasetOptions.keep_urls at prepare time
    learned: int = 0  # how many of ``signatures`` were learned from the mail (the rest: stored ones)

    def as_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "signatures": list(self.signatures),
            "learned_signatures": self.learned,
            "protected_names": list(self.protected_names),
            "keep_urls": self.keep_urls,
        }


@dataclass(frozen=True)
class TrainingView:
    text: str  # the author's text, scrubbed: the training reply
    quoted: str | None  # the message replied to, scrubbed: the training context
    extraction: Extraction  # the unscrubbed cleaner result (removed zones and reasons)
    pii: Counter = field(default_factory=Counter)  # placeholders by type, text and quoted together


def learn_profile(
    records: Sequence[MailRecord], known_signatures: Iterable[str] = (), *, keep_urls: bool = False
) -> CleanProfile:
    """The profile ``prepare`` cleans with. ``known_signatures``: stored ones (EmailAI, HTML or text)."""
    learned = learn_signatures([r.text or "" for r in records])
    known = [t for t in (html_to_text(sig) if "<" in sig else sig.strip() for sig in known_signatures) if t]
    return CleanProfile(
        signatures=tuple(learned + known),
        protected_names=tuple(protected_names(r.from_name for r in records)),
        keep_urls=keep_urls,
        learned=len(learned),
    )


def clean_record(rec: MailRecord, profile: CleanProfile) -> Extraction:
    """The author's text of one record, with the user's signatures removed (not yet scrubbed)."""
    return extract_author_text(rec.text, rec.html, signatures=profile.signatures)


def training_view(rec: MailRecord, profile: CleanProfile, ex: Extraction | None = None) -> TrainingView:
    """Clean one record (or take its ``ex`` from ``clean_record``) and scrub what is kept, exactly as
    training sees it."""
    ex = ex if ex is not None else clean_record(rec, profile)
    out = scrub(ex.text, keep_urls=profile.keep_urls, protect=profile.protected_names)
    ctx = scrub(ex.quoted, keep_urls=profile.keep_urls, protect=profile.protected_names) if ex.quoted else None
    pii = Counter(out.counts)
    if ctx:
        pii.update(ctx.counts)
    return TrainingView(text=out.text, quoted=ctx.text if ctx else None, extraction=ex, pii=pii)


def preview_eml(raw: bytes, *, source: str, profile: CleanProfile | None = None) -> TrainingView:
    """One .eml as training would see it. Without a profile (no ``--user-id``) nothing was learned:
    no signatures, and only the sender's own name is protected, as ``prepare`` protects the user's."""

    rec = parse_message(raw, source=source)
    if profile is None:
        profile = CleanProfile(protected_names=tuple(protected_names([rec.from_name])))
    return training_view(rec, profile)


def write_profile(path: Path, profile: CleanProfile) -> Path:
    return write_json(Path(path), profile.as_json())


def read_profile(path: Path) -> CleanProfile:
    """Read a profile written by ``prepare``; a missing or foreign file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise MailvoiceError(f"no cleaning profile at {path}: run mailvoice prepare for this user first")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MailvoiceError(f"unreadable cleaning profile {path}: {type(e).__name__}") from None
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        got = obj.get("schema") if isinstance(obj, dict) else "?"
        raise MailvoiceError(f"unsupported cleaning profile {path} (schema {got}, expected {SCHEMA})")
    sigs, names = obj.get("signatures"), obj.get("protected_names")
    if not (isinstance(sigs, list) and all(isinstance(s, str) for s in sigs)
            and isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise MailvoiceError(f"malformed cleaning profile {path}: signatures and protected_names must be string lists")
    return CleanProfile(
        signatures=tuple(sigs),
        protected_names=tuple(names),
        keep_urls=bool(obj.get("keep_urls", False)),
        learned=int(obj.get("learned_signatures", len(sigs))),
    )
