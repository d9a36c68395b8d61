"""Content cues for training prompts: the notes a user would have typed, derived from the reply.

At drafting time the user gives notes (``mailvoice write --notes``) or the email being answered;
a model trained on prompts that hold only a recipient and a subject learns to invent what the
email says. So every training prompt can carry ``Notes:`` derived, offline and deterministically,
from the reply itself: its points in order (each sentence's content words), its asks (questions,
"can you"/"please" requests, marked ``ask:``) and its dates and times, kept whatever else is
dropped. A share of prompts keep no notes (``note_share``), so prompts without notes still work.

Hand-written on purpose: keyword extractors (YAKE, RAKE) rank phrases by corpus statistics and
lose the order and the asks, which are what a user's notes hold; this is 60 lines of pure code.
``note_items`` splits notes back into items and ``note_coverage`` measures how many a generated
email expresses (evaluate).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from ..evaluate.metrics import FUNCTION_WORDS, greeting_of, sign_off_of  # one home for these word lists and detectors

NOTES_SEP = "; "
ASK_PREFIX = "ask: "

# content-free words dropped from a note item (function words, fillers, courtesy)
_STOP = frozenset(FUNCTION_WORDS) | frozenset(
    """i'm i'll i've i'd you're you'll you've we're we'll it's that's there's
    let's don't can't won't isn't didn't doesn't hi hello hey dear thanks thank cheers regards best
    please pls just oh ok okay yes yeah great good lovely hope hoping sure get got re""".split()
)
_DATE = re.compile(
    r"(?i)\b(mon|tues?|wed(nes)?|thu(rs)?|fri|sat(ur)?|sun)(day)?\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)"
    r"[a-z]*\b|\b(today|tomorrow|tonight|next week|this week|weekend|morning|afternoon|evening)\b|"
    r"\b\d{1,2}(:\d{2})?\s?(am|pm)\b|\b\d{1,2}:\d{2}\b|\b\d{1,2}(st|nd|rd|th)\b|\b\d{1,4}[/.-]\d{1,2}([/.-]\d{2,4})?\b"
)
_ASK = re.compile(r"(?i)\b(can|could|would|will) you\b|\bplease\b|\blet me know\b|\bdo you\b|\bare you\b")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_TOKEN = re.compile(r"<[A-Z]+>|[A-Za-z0-9][A-Za-z0-9'’&/:-]*")


def _body_lines(reply: str) -> list[str]:
    """The reply without its greeting line and its closing lines (sign-off, name)."""
    lines = [x.strip() for x in reply.strip().splitlines() if x.strip()]
    if lines and greeting_of(lines[0]) and len(lines[0].split()) <= 4:
        lines = lines[1:]
    while lines and (sign_off_of(lines[-1]) or len(lines[-1].split()) <= 2 and not lines[-1].endswith(("?", "."))):
        lines = lines[:-1]
    return lines


def _phrase(sentence: str, max_words: int) -> str:
    kept = [t for t in _TOKEN.findall(sentence) if t.lower().strip("'’") not in _STOP]
    return " ".join(kept[:max_words])


def derive_notes(reply: str, *, max_items: int = 4, max_words: int = 7) -> list[str]:
    """Note items for ``reply``, in the reply's order: each sentence's content words (at most
    ``max_words``), asks prefixed ``ask:``. With more than ``max_items`` sentences, asks and
    sentences with a date or time are kept first, then the earliest others."""
    cands = []
    for i, s in enumerate(s.strip() for line in _body_lines(reply) for s in _SENTENCE.findall(line)):
        phrase = _phrase(s, max_words)
        if len(phrase.split()) < 2:
            continue
        ask = s.endswith("?") or bool(_ASK.search(s))
        dated = bool(_DATE.search(s))
        cands.append((i, (ASK_PREFIX if ask else "") + phrase, 0 if ask or dated else 1))
    keep = sorted(sorted(cands, key=lambda c: (c[2], c[0]))[:max_items])
    return [text for _, text, _ in keep]


def notes_text(items: Sequence[str]) -> str:
    return NOTES_SEP.join(items)


def note_items(notes: str) -> list[str]:
    """A notes line back into items: ';'-separated (derived notes), else ','-separated (typed)."""
    sep = ";" if ";" in notes else ","
    return [x.strip() for x in notes.split(sep) if x.strip()]


def gets_notes(example_id: str, share: float) -> bool:
    """Deterministic per example: the same rows carry notes on every prepare run."""
    h = int(hashlib.sha256(f"notes:{example_id}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < share


def _stem(w: str) -> str:
    w = w.lower().strip("'’")
    for suf in ("ing", "ed", "es", "s"):
        if len(w) > len(suf) + 3 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def item_expressed(item: str, text: str, threshold: float = 0.5) -> bool:
    """At least ``threshold`` of the item's content words (lightly stemmed) occur in ``text``."""
    item = item.removeprefix(ASK_PREFIX)
    want = {_stem(t) for t in _TOKEN.findall(item) if t.lower() not in _STOP}
    if not want:
        return True
    have = {_stem(t) for t in _TOKEN.findall(text)}
    return len(want & have) / len(want) >= threshold


def note_coverage(notes: Sequence[str], generations: Sequence[str]) -> dict:
    """Share of note items the generations express, over every (notes, generation) pair that
    has notes; ``prompts`` counts those pairs."""
    total = hit = prompts = 0
    for n, g in zip(notes, generations, strict=True):
        items = note_items(n or "")
        if not items:
            continue
        prompts += 1
        total += len(items)
        hit += sum(item_expressed(it, g or "") for it in items)
    return {"coverage": hit / total if total else None, "items": total, "prompts": prompts}
