"""Dataset filters: length, language, exact and near duplicates, the one-liner cap.

Pure functions and one small index; ``build.make_examples`` wires them and counts each drop.

- Language: ``py3langid`` (the langid.py model ships inside the wheel, nothing is downloaded),
  restricted to a set of common languages so short mail does not come out as Latin or Xhosa.
  Texts under ``MIN_LANG_CHARS`` letters are "unknown" (None) and a policy keeps them.
- Near duplicates: MinHash LSH (``datasketch``) over word 5-gram shingles, Jaccard threshold
  0.8 by default; candidates from the LSH are confirmed with the MinHash Jaccard estimate.
"""

from __future__ import annotations

from mailvoice.errors import MailvoiceError

import re
from collections.abc import Sequence
from functools import lru_cache

# heavy: py3langid and datasketch (numpy) are imported when the filter first runs.

DETECT_LANGUAGES = (
    "en", "de", "fr", "es", "it", "nl", "pt", "sv", "da", "no", "fi", "pl", "cs", "ro", "hu",
    "tr", "ru", "uk", "el", "ja", "zh", "ko", "ar", "he", "hi",
)  # fmt: skip
MIN_LANG_CHARS = 20
_WORD = re.compile(r"\w+", re.UNICODE)


def word_count(text: str) -> int:
    return len(text.split())


def length_ok(text: str, min_words: int, max_words: int) -> bool:
    """True when ``min_words <= words <= max_words`` (whitespace-separated words)."""
    return min_words <= word_count(text) <= max_words


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(DETECT_LANGUAGES))
    return ident


def detect_language(text: str, *, min_confidence: float = 0.5) -> str | None:
    """ISO 639-1 code of ``text``'s language, or None when too short or unsure."""
    letters = sum(c.isalpha() for c in text)
    if letters < MIN_LANG_CHARS:
        return None
    lang, prob = _identifier().classify(text)
    return lang if prob >= min_confidence else None


def language_ok(text: str, languages: Sequence[str] | None) -> bool:
    """Policy: None keeps everything; otherwise keep detected languages in the list and
    texts too short to tell (a "Thanks, see you then" is not evidence of another language)."""
    if not languages:
        return True
    lang = detect_language(text)
    return lang is None or lang in {code.lower() for code in languages}


def norm_key(text: str) -> str:
    """Exact-duplicate key: lowercase words, punctuation and spacing ignored."""
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, n: int = 5) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) <= n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


class NearDuplicateIndex:
    """Exact + near-duplicate detector. ``add`` returns False for a duplicate (not added)."""

    def __init__(self, threshold: float = 0.8, *, num_perm: int = 128, shingle_size: int = 5, seed: int = 1):
        from datasketch import MinHashLSH

        if not 0.05 <= threshold <= 0.95:
            # datasketch's LSH cannot band above ~0.95 with 128 permutations (b < 2)
            raise MailvoiceError(f"near-duplicate threshold must be between 0.05 and 0.95, got {threshold}")
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.seed = seed
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._hashes: dict = {}
        self._exact: set[str] = set()
        self.last_reason: str | None = None

    def _minhash(self, text: str):
        from datasketch import MinHash

        m = MinHash(num_perm=self.num_perm, seed=self.seed)
        m.update_batch([s.encode("utf-8") for s in shingles(text, self.shingle_size)])
        return m

    def add(self, key: str, text: str) -> bool:
        exact = norm_key(text)
        if exact in self._exact:
            self.last_reason = "duplicate_text"
            return False
        m = self._minhash(text)
        for other in self._lsh.query(m):
            if m.jaccard(self._hashes[other]) >= self.threshold:
                self.last_reason = "near_duplicate"
                return False
        if key in self._hashes:  # same key twice with different text: keep both
            key = f"{key}#{len(self._hashes)}"
        self._lsh.insert(key, m)
        self._hashes[key] = m
        self._exact.add(exact)
        self.last_reason = None
        return True

    def __len__(self) -> int:
        return len(self._hashes)


def is_one_liner(text: str, max_words: int = 3) -> bool:
    """"Thanks!", "Sounds good." — a single short line."""
    t = text.strip()
    return word_count(t) <= max_words and "\n" not in t


def one_liner_cap(n_regular: int, share: float) -> int:
    """How many one-liners to keep next to ``n_regular`` other examples."""
    return int(share * max(n_regular, 1))
