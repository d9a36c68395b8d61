"""Voice and leakage metrics as pure functions of strings and small arrays.

- ``AuthorshipClassifier``: character n-grams + function-word frequencies → logistic regression,
  trained on the user's training emails against other authors'. Its mean P(user) on real
  held-out user mail is the *ceiling*, on other authors' mail the *floor*; ``calibrated`` puts a
  model's generations on that scale, *unclipped*: above 1 means the classifier finds the
  generations more typical of the user than the user's own held-out mail (a caricature), flagged
  in ``above_ceiling``.
- ``discriminator_auc``: a classifier trained to tell the user's real held-out replies from the
  model's replies to the same prompts, cross-validated AUC (0.5 = indistinguishable).
- ``burrows_delta``: Burrows' Delta on function-word frequencies (lower = closer to the profile).
- ``surface_features``: length, greeting and sign-off habits, punctuation, sentence length;
  ``habit_ratio`` puts a feature distance on the user's own held-out distance (1 = as close as
  the user's own unseen mail).
- ``novelty``: share of generated word 8-grams that do not occur in the training text.
- ``content_overlap``: ROUGE-L and chrF against the real reply: *content*, not style.
- ``find_pii`` / ``pii_leaks``: real PII values (from the unscrubbed source records) that come
  back in generated text.

scikit-learn work runs with BLAS limited to one thread: its OpenBLAS threads otherwise slowed
torch in the same process about five times.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A standard English function-word list (articles, pronouns, auxiliaries, prepositions,
# conjunctions, common adverbs): content-free words whose rates mark an author, not a topic.
FUNCTION_WORDS = tuple(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves shall may might must
    let us upon also though although yet whether either neither one ever quite rather really still
    even much many well""".split()
)

GREETINGS = ("hi", "hello", "hey", "dear", "morning", "good morning", "afternoon", "good afternoon",
             "evening", "hiya", "greetings", "to whom")
SIGN_OFFS = ("cheers", "best", "best wishes", "kind regards", "regards", "warm regards", "thanks",
             "thank you", "many thanks", "sincerely", "yours sincerely", "yours faithfully", "love",
             "all the best", "speak soon", "take care", "warmly", "ta", "x", "yours")

_WORD = re.compile(r"[A-Za-z']+")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENT = re.compile(r"[^.!?\n]+[.!?]*")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


# ------------------------------------------------------------------------------------ classifier
@dataclass
class ClassifierReport:
    ceiling: float | None  # mean P(user) on real held-out user emails
    floor: float | None  # mean P(user) on other authors' held-out emails
    margin: float
    calibrated: bool  # ceiling − floor ≥ margin (else "not enough data to judge")
    reason: str
    scores: dict  # name → mean P(user)
    voice_score: dict  # name → (score − floor)/(ceiling − floor), unclipped (None when not calibrated)
    per_text: dict  # name → P(user) of each text (None for an empty one)
    above_ceiling: dict = None  # name → voice score > 1: more "you" than you (a caricature)


class AuthorshipClassifier:
    """P(written by the user) from char 2–4-grams (within words) and function-word rates."""

    def __init__(self, *, seed: int = 0, c: float = 1.0):
        self.seed = seed
        self.c = c
        self.pipe = None

    def _build(self):
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union
        from sklearn.preprocessing import Normalizer

        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2, lowercase=False)
        fw = make_pipeline(
            CountVectorizer(vocabulary=FUNCTION_WORDS, token_pattern=r"(?u)\b[A-Za-z']+\b", lowercase=True),
            Normalizer(norm="l1"),
        )
        return make_pipeline(
            make_union(chars, fw),
            LogisticRegression(C=self.c, class_weight="balanced", max_iter=2000, random_state=self.seed),
        )

    def fit(self, user_texts: Sequence[str], other_texts: Sequence[str]) -> AuthorshipClassifier:
        from threadpoolctl import threadpool_limits

        if not user_texts or not other_texts:
            raise ValueError("need texts from the user and from other authors")
        self.pipe = self._build()
        with threadpool_limits(limits=1):
            self.pipe.fit(list(user_texts) + list(other_texts), [1] * len(user_texts) + [0] * len(other_texts))
        return self

    def proba(self, texts: Sequence[str]) -> list[float]:
        from threadpoolctl import threadpool_limits

        texts = [t for t in texts if t and t.strip()]
        if not texts:
            return []
        with threadpool_limits(limits=1):
            return [float(p) for p in self.pipe.predict_proba(texts)[:, 1]]

    def proba_each(self, texts: Sequence[str]) -> list[float | None]:
        ps = iter(self.proba(texts))
        return [next(ps) if t and t.strip() else None for t in texts]

    def mean_proba(self, texts: Sequence[str]) -> float | None:
        ps = self.proba(texts)
        return sum(ps) / len(ps) if ps else None


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def calibrated(value: float | None, floor: float | None, ceiling: float | None, *, clip: bool = True) -> float | None:
    """Where ``value`` sits from floor (0) to ceiling (1); clipped to 0..1 unless ``clip=False``."""
    if value is None or floor is None or ceiling is None or ceiling <= floor:
        return None
    x = (value - floor) / (ceiling - floor)
    return min(1.0, max(0.0, x)) if clip else x


def voice_scores(
    *,
    user_train: Sequence[str],
    other_train: Sequence[str],
    user_heldout: Sequence[str],
    other_heldout: Sequence[str],
    generations: dict[str, Sequence[str]],
    margin: float = 0.3,
    min_texts: int = 5,
    seed: int = 0,
) -> ClassifierReport:
    """Train on the train sides, score the held-out sides (floor/ceiling) and each set of generations."""
    short = [
        f"{name} has {len(t)} emails (need {min_texts})"
        for name, t in (("user train", user_train), ("other train", other_train),
                        ("user held-out", user_heldout), ("other held-out", other_heldout))
        if len(t) < min_texts
    ]
    if short:
        return ClassifierReport(None, None, margin, False, "not enough data to judge: " + "; ".join(short),
                                {}, {k: None for k in generations}, {}, {k: False for k in generations})
    clf = AuthorshipClassifier(seed=seed).fit(user_train, other_train)
    ceiling = clf.mean_proba(user_heldout)
    floor = clf.mean_proba(other_heldout)
    per_text = {k: clf.proba_each(v) for k, v in generations.items()}
    scores = {k: _mean([p for p in v if p is not None]) for k, v in per_text.items()}
    ok = ceiling is not None and floor is not None and ceiling - floor >= margin
    reason = (
        f"ceiling {ceiling:.2f} is above floor {floor:.2f} by ≥ {margin}"
        if ok
        else f"not enough data to judge: the classifier separates real held-out mail by only "
        f"{(ceiling or 0) - (floor or 0):.2f} (ceiling {ceiling:.2f}, floor {floor:.2f}; need {margin})"
    )
    vs = {k: calibrated(v, floor, ceiling, clip=False) if ok else None for k, v in scores.items()}
    above = {k: v is not None and v > 1.0 for k, v in vs.items()}
    return ClassifierReport(ceiling, floor, margin, ok, reason, scores, vs, per_text, above)


# ------------------------------------------------------------------------------------ real vs generated
def habit_vector(text: str) -> list[float]:
    """Per-email habits as numbers (the discriminator's non-lexical side): length, sentence
    length, greeting, sign-off, punctuation rates, paragraphs, lines."""
    ws = words(text)
    n = max(len(ws), 1)
    sents = [s for s in _SENT.findall(text) if words(s)]
    return [math.log1p(len(ws)), len(ws) / max(len(sents), 1), float(greeting_of(text) is not None),
            float(sign_off_of(text) is not None), 100 * text.count("!") / n, 100 * text.count("?") / n,
            100 * text.count(",") / n, float(len([p for p in text.split("\n\n") if p.strip()])),
            float(len([x for x in text.splitlines() if x.strip()]))]


def _habit_matrix(texts):
    import numpy as np

    return np.array([habit_vector(t) for t in texts], dtype=float)


def discriminator_auc(real: Sequence[str], generated: Sequence[str], *, folds: int = 5, seed: int = 0,
                      min_pairs: int = 5) -> dict:
    """Can a classifier tell the user's real replies from the model's replies to the same prompts?

    ``real[i]`` and ``generated[i]`` answer the same prompt; both stay in the same fold (grouped
    k-fold), so the classifier never sees the prompt's topic on one side only. Features: the
    authorship classifier's (char 2–4-grams, function-word rates) plus ``habit_vector``; logistic
    regression. Returns the pooled out-of-fold ROC AUC: 0.5 = indistinguishable, 1.0 = always
    told apart (below 0.5 is noise around 0.5)."""
    pairs = [(r, g) for r, g in zip(real, generated, strict=True) if r and r.strip() and g and g.strip()]
    n = len(pairs)
    if n < min_pairs:
        return {"auc": None, "pairs": n, "folds": 0,
                "reason": f"not enough data to judge: {n} real/generated pairs (need {min_pairs})"}
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler
    from threadpoolctl import threadpool_limits

    features = make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2, lowercase=False),
        make_pipeline(CountVectorizer(vocabulary=FUNCTION_WORDS, token_pattern=r"(?u)\b[A-Za-z']+\b"), Normalizer(norm="l1")),
        make_pipeline(FunctionTransformer(_habit_matrix), StandardScaler()),
    )
    pipe = make_pipeline(features, LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed))
    texts = [r for r, _ in pairs] + [g for _, g in pairs]
    y = [1] * n + [0] * n
    groups = list(range(n)) * 2
    k = min(folds, n)
    with threadpool_limits(limits=1):
        p = cross_val_predict(pipe, texts, y, groups=groups, cv=GroupKFold(n_splits=k), method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, p))
    return {"auc": auc, "pairs": n, "folds": k,
            "reason": f"{k}-fold cross-validated AUC over {n} real/generated pairs (0.5 = indistinguishable)"}


# ------------------------------------------------------------------------------------ Burrows' Delta
def fw_frequencies(text: str, vocab: Sequence[str] = FUNCTION_WORDS) -> list[float]:
    ws = words(text)
    c = Counter(ws)
    n = max(len(ws), 1)
    return [c[w] / n for w in vocab]


def burrows_delta(
    reference_docs: Sequence[str],
    profile_texts: Sequence[str],
    candidate_texts: Sequence[str],
    *,
    vocab: Sequence[str] = FUNCTION_WORDS,
    top: int = 60,
) -> float | None:
    """Burrows' Delta between a profile and a candidate set: mean |z_profile − z_candidate| over
    the ``top`` most frequent function words of the reference corpus, z-scored with the
    reference documents' per-word mean and standard deviation. Lower = closer in style."""
    if len(reference_docs) < 2 or not profile_texts or not candidate_texts:
        return None
    ref = [fw_frequencies(d, vocab) for d in reference_docs]
    n = len(ref)
    means = [sum(r[j] for r in ref) / n for j in range(len(vocab))]
    sds = [math.sqrt(sum((r[j] - means[j]) ** 2 for r in ref) / (n - 1)) for j in range(len(vocab))]
    order = sorted(range(len(vocab)), key=lambda j: -means[j])
    keep = [j for j in order if sds[j] > 0][:top]
    if not keep:
        return None
    prof = fw_frequencies("\n".join(profile_texts), vocab)
    cand = fw_frequencies("\n".join(candidate_texts), vocab)
    return sum(abs((prof[j] - means[j]) / sds[j] - (cand[j] - means[j]) / sds[j]) for j in keep) / len(keep)


# ------------------------------------------------------------------------------------ surface features
def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _last_lines(text: str, k: int = 3) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()][-k:]


def greeting_of(text: str) -> str | None:
    first = _first_line(text).lower()
    for g in sorted(GREETINGS, key=len, reverse=True):
        if re.match(rf"{re.escape(g)}\b", first):
            return g
    return None


def sign_off_of(text: str) -> str | None:
    for line in reversed(_last_lines(text)):
        low = line.lower().rstrip(",.!— -")
        for s in sorted(SIGN_OFFS, key=len, reverse=True):
            if low == s or re.match(rf"{re.escape(s)}\b[ ,!.]*$", low) or (s != "x" and low.startswith(s + ",")):
                return s
    return None


FEATURE_LABELS = {
    "words": "length (words)",
    "sentence_words": "words per sentence",
    "greeting_rate": "starts with a greeting",
    "sign_off_rate": "ends with a sign-off",
    "exclamations": "! per 100 words",
    "questions": "? per 100 words",
    "commas": "commas per 100 words",
    "dashes": "dashes per 100 words",
    "paragraphs": "paragraphs",
}


def surface_features(texts: Sequence[str]) -> dict:
    """Mean per-email habits of a set of emails, plus the most common greeting and sign-off."""
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        return {}
    n = len(texts)
    total_words = sum(len(words(t)) for t in texts) or 1
    sents = [s for t in texts for s in _SENT.findall(t) if words(s)]
    greet = Counter(g for g in map(greeting_of, texts) if g)
    sign = Counter(s for s in map(sign_off_of, texts) if s)
    joined = "\n".join(texts)
    per100 = lambda ch: round(100 * joined.count(ch) / total_words, 2)  # noqa: E731
    return {
        "emails": n,
        "words": round(total_words / n, 1),
        "sentence_words": round(sum(len(words(s)) for s in sents) / max(len(sents), 1), 1),
        "greeting_rate": round(sum(greet.values()) / n, 2),
        "sign_off_rate": round(sum(sign.values()) / n, 2),
        "exclamations": per100("!"),
        "questions": per100("?"),
        "commas": per100(","),
        "dashes": round(100 * len(re.findall(r"\s[—–-]\s", joined)) / total_words, 2),
        "paragraphs": round(sum(len([p for p in t.split("\n\n") if p.strip()]) for t in texts) / n, 1),
        "top_greeting": greet.most_common(1)[0][0] if greet else None,
        "top_sign_off": sign.most_common(1)[0][0] if sign else None,
    }


def feature_distance(profile: dict, other: dict) -> float | None:
    """Mean relative difference over the numeric features (0 = identical habits)."""
    keys = [k for k in FEATURE_LABELS if k in profile and k in other]
    if not keys:
        return None
    return sum(abs(other[k] - profile[k]) / max(abs(profile[k]), 1e-9, 0.05 if k.endswith("rate") else 1.0)
               for k in keys) / len(keys)


def habit_ratio(distance: float | None, own_distance: float | None) -> float | None:
    """A habit distance on the scale of the user's own held-out distance (1 = as close to the
    profile as the user's own unseen mail; other authors are typically 2–3). A floor of 0.02 on
    the denominator keeps a near-zero own distance from blowing the ratio up."""
    if distance is None or own_distance is None:
        return None
    return distance / max(own_distance, 0.02)


# ------------------------------------------------------------------------------------ novelty
def tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


def ngrams(toks: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))


def ngram_set(texts: Iterable[str], n: int = 8) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for t in texts:
        out.update(ngrams(tokens(t), n))
    return out


def novelty(generated: Sequence[str], training: Sequence[str] | set, n: int = 8) -> dict:
    """Share of generated n-grams (lower-cased word/punctuation tokens) not in the training text."""
    train = training if isinstance(training, set) else ngram_set(training, n)
    total = novel = 0
    per_text = []
    for g in generated:
        grams = list(ngrams(tokens(g), n))
        if not grams:
            continue
        k = sum(1 for x in grams if x not in train)
        total += len(grams)
        novel += k
        per_text.append(k / len(grams))
    return {
        "n": n,
        "ngrams": total,
        "novelty": (novel / total) if total else None,
        "min_per_text": min(per_text) if per_text else None,
    }


# ------------------------------------------------------------------------------------ content
def content_overlap(predictions: Sequence[str], references: Sequence[str]) -> dict:
    """ROUGE-L F1 (mean over pairs) and corpus chrF (0..100): how much of the real reply's
    *content* came back. Not a style measure: the prompt does not say what the reply says."""
    pairs = [(p, r) for p, r in zip(predictions, references, strict=True) if r and r.strip()]
    if not pairs:
        return {"rouge_l": None, "chrf": None, "pairs": 0}
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import CHRF

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rl = [scorer.score(r, p)["rougeL"].fmeasure for p, r in pairs]
    chrf = CHRF().corpus_score([p for p, _ in pairs], [[r for _, r in pairs]]).score
    return {"rouge_l": sum(rl) / len(rl), "chrf": chrf, "pairs": len(pairs)}


# ------------------------------------------------------------------------------------ PII
_PLACEHOLDER = re.compile(r"(<(?:EMAIL|PHONE|CARD|SSN|IBAN|BANK|DOB|IP|SECRET|URL)>)")


def find_pii(text: str, *, keep_urls: bool = True) -> set[str]:
    """The raw values ``dataset.pii.scrub`` would replace in ``text`` (the same detectors, by
    aligning its output with the input: literal text between placeholders is kept verbatim)."""
    from ..dataset.pii import scrub

    if not text:
        return set()
    scrubbed = scrub(text, keep_urls=keep_urls).text
    parts = _PLACEHOLDER.split(scrubbed)
    if len(parts) == 1:
        return set()
    pattern = "".join("(.+?)" if i % 2 else re.escape(p) for i, p in enumerate(parts))
    m = re.fullmatch(pattern, text, re.S)
    if not m:
        return set()
    return {v.strip().lower() if "@" in v else v.strip() for v in m.groups() if v.strip()}


def _pii_key(value: str) -> str:
    """Addresses lower-cased; numbers by their digits, the last 9 for long ones, so +44 7700
    900456 and 07700 900456 are the same phone."""
    if "@" in value:
        return value.lower()
    digits = re.sub(r"\D", "", value)
    if not digits:
        return value
    return digits[-9:] if len(digits) >= 9 else digits


_NUMBER_RUN = re.compile(r"\+?\(?\d[\d\s().-]{4,}\d")


def mask(value: str) -> str:
    """Enough of a value to recognise it in a report, not enough to reuse it."""
    return value[:2] + "…" + value[-2:] if len(value) > 6 else "…"


def pii_leaks(generated: Sequence[str], training_pii: Iterable[str], *, allowed: Iterable[str] = ()) -> list[str]:
    """Real PII values from the training sources that come back in generated text, masked.

    Values are compared normalised (addresses lower-cased, numbers by their digits, whatever
    their spacing); ``allowed`` are values the prompt itself contained (echoing them is fine)."""
    allow = {_pii_key(v) for v in allowed}
    secrets = {_pii_key(v) for v in training_pii if len(_pii_key(v)) >= 6} - allow
    hits = set()
    for g in generated:
        low = g.lower()
        runs = {re.sub(r"\D", "", m.group(0)) for m in _NUMBER_RUN.finditer(g)}
        for s in secrets:
            if "@" in s and s in low:
                hits.add(s)
            elif s.isdigit() and any(s in r for r in runs):
                hits.add(s)
    return sorted(mask(h) for h in hits)
