"""Best-of-N: which of N sampled drafts to keep.

One home for the rule, used where drafts are written (``write``/MCP through
``gateway.compose.StyleScorer``, the gateway's ``best_of``) and where it is measured
(``evaluate --candidates N``, so the voice benchmark reports what best-of-N buys). P(you) from
the authorship classifier alone rewards the caricature (always greeting, longer, more "you"
than you), so each candidate also loses its habit distance to the user's profile and, given
notes, gains the share of note items it expresses; a draft cut off by the token limit (it did
not end by itself) loses TRUNCATED_PENALTY: note coverage rewards length, and without it best of 2
chose cut-off drafts on three of five real authors (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..dataset.notes import note_coverage
from .metrics import AuthorshipClassifier, feature_distance, surface_features

HABIT_WEIGHT = 0.5  # P(you) − HABIT_WEIGHT · min(habit distance, 1) + NOTE_WEIGHT · note coverage
NOTE_WEIGHT = 0.5   # not tuned: docs/benchmarks.md "Best-of-N and retrieval" measures these weights
TRUNCATED_PENALTY = 0.5  # an email cut off mid-sentence is never what the user would send


def rerank_scores(p_user: Sequence[float], texts: Sequence[str], profile: dict | None,
                  notes: str | None = None, stopped: Sequence[bool] | None = None) -> list[float]:
    """The score per candidate; an empty candidate scores −1 and never wins. ``stopped[i]``: did
    candidate i end by itself (None: unknown, no penalty)."""
    out = []
    stopped = stopped if stopped is not None else [True] * len(texts)
    for p, t, ended in zip(p_user, texts, stopped, strict=True):
        if not t or not t.strip():
            out.append(-1.0)
            continue
        d = feature_distance(profile, surface_features([t])) if profile else None
        s = p - HABIT_WEIGHT * min(d, 1.0) if d is not None else p
        cov = note_coverage([notes], [t])["coverage"] if notes else None
        s = s + NOTE_WEIGHT * cov if cov is not None else s
        out.append(s if ended else s - TRUNCATED_PENALTY)
    return out


class Reranker:
    """Fitted once on the user's training replies against other authors' mail; then
    ``(texts, notes) → scores``."""

    def __init__(self, user_texts: Sequence[str], other_texts: Sequence[str], *, seed: int = 0):
        self.classifier = AuthorshipClassifier(seed=seed).fit(user_texts, other_texts)
        self.profile = surface_features(user_texts)

    def __call__(self, texts: Sequence[str], notes: str | None = None,
                 stopped: Sequence[bool] | None = None) -> list[float]:
        ps = self.classifier.proba_each(texts)
        return rerank_scores([p if p is not None else -1.0 for p in ps], texts, self.profile, notes, stopped)

    def best(self, texts: Sequence[str], notes: str | None = None,
             stopped: Sequence[bool] | None = None) -> tuple[int, list[float]]:
        """The index of the best candidate (the first on a tie) and every score."""
        scores = self(texts, notes, stopped)
        return max(range(len(texts)), key=lambda i: scores[i]), scores
