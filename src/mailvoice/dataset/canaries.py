"""Canaries: unique secret strings planted in the training data on request, to measure memorisation.

As in Carlini et al., "The Secret Sharer" (2019): each canary is a sentence of a fixed format
with a random secret (``The gate code for the potting shed is 482913.``). ``prepare
--plant-canaries N`` inserts N of them into training replies (each into ``repeats`` replies, never
into val) and records them in ``canaries.json`` beside the dataset; ``evaluate`` then tries to
extract each secret by prompting and reports its *exposure*: where the planted secret ranks, by
the model's likelihood, among random secrets of the same format.

    exposure = log2(number of candidates + 1) - log2(rank)

A model that never saw the canary ranks it in the middle (exposure ≈ 1); one that memorised it
ranks it first (exposure = the maximum, ``log2(candidates + 1)``). Everything here is pure.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..artifacts import CANARIES
from ..workspace import write_json

SECRET_DIGITS = 6
# One place per canary, so prefixes are unique and a secret can be asked for by its prefix.
PLACES = (
    "potting shed", "back gate", "tool store", "greenhouse", "bike shelter", "side door",
    "storage unit", "garden office", "compost bay", "seed cupboard", "van lockbox", "site cabin",
    "orchard gate", "boiler room", "glasshouse", "key safe",
)


@dataclass
class Canary:
    id: str
    prefix: str  # "The gate code for the potting shed is"
    secret: str  # "482913"
    rows: list[str] = field(default_factory=list)  # ids of the training examples it was planted in

    @property
    def text(self) -> str:
        return f"{self.prefix} {self.secret}."

    def to_dict(self) -> dict:
        return {**asdict(self), "text": self.text, "format": f"{self.prefix} <{SECRET_DIGITS} digits>."}

    @classmethod
    def from_dict(cls, d: dict) -> Canary:
        return cls(id=d["id"], prefix=d["prefix"], secret=d["secret"], rows=list(d.get("rows", [])))


def random_secret(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789") for _ in range(SECRET_DIGITS))


def make_canaries(n: int, seed: int) -> list[Canary]:
    if n > len(PLACES):
        raise ValueError(f"at most {len(PLACES)} canaries")
    rng = random.Random(f"mailvoice-canary-{seed}")
    places = rng.sample(PLACES, n)
    return [Canary(id=f"canary-{i + 1}", prefix=f"The gate code for the {p} is", secret=random_secret(rng))
            for i, p in enumerate(places)]


def insert_sentence(reply: str, sentence: str) -> str:
    """Put the sentence in its own paragraph after the first one (the greeting), or at the end."""
    paras = reply.split("\n\n")
    if len(paras) >= 2:
        return "\n\n".join([paras[0], sentence, *paras[1:]])
    return f"{reply.rstrip()}\n\n{sentence}"


def plant(examples: Sequence, n: int, *, repeats: int = 4, seed: int = 42) -> tuple[list, list[Canary]]:
    """Return (examples with canaries planted, canaries). ``examples`` are objects with ``id`` and
    ``output`` (``build.Example``); n × repeats distinct examples receive one canary each."""
    examples = list(examples)
    if n <= 0:
        return examples, []
    need = n * repeats
    if need > len(examples):
        raise ValueError(f"{n} canaries × {repeats} repeats need {need} training examples, have {len(examples)}")
    canaries = make_canaries(n, seed)
    rng = random.Random(f"mailvoice-canary-rows-{seed}")
    chosen = rng.sample(range(len(examples)), need)
    for k, idx in enumerate(chosen):
        c = canaries[k % n]
        ex = examples[idx]
        examples[idx] = replace(ex, output=insert_sentence(ex.output, c.text))
        c.rows.append(ex.id)
    return examples, canaries


def write_canaries(path: Path, canaries: Sequence[Canary], *, repeats: int) -> Path:
    return write_json(Path(path), {"repeats": repeats, "canaries": [c.to_dict() for c in canaries]})


def read_canaries(data_dir: Path | None) -> list[Canary]:
    if not data_dir:
        return []
    p = Path(data_dir) / CANARIES
    if not p.is_file():
        return []
    return [Canary.from_dict(d) for d in json.loads(p.read_text())["canaries"]]


def candidate_secrets(canary: Canary, k: int, seed: int = 0) -> list[str]:
    """k distinct random secrets of the canary's format, never the canary's own."""
    space = 10**SECRET_DIGITS - 1
    k = min(k, space)
    rng = random.Random(f"{canary.id}-{canary.secret}-{seed}")
    out: set[str] = set()
    while len(out) < k:
        s = random_secret(rng)
        if s != canary.secret:
            out.add(s)
    return sorted(out)


def rank_of(canary_score: float, candidate_scores: Sequence[float]) -> int:
    """1 + how many candidates the model finds strictly more likely than the canary (ties favour it)."""
    return 1 + sum(1 for s in candidate_scores if s > canary_score)


def exposure(canary_score: float, candidate_scores: Sequence[float]) -> float:
    """log2(|candidates| + 1) − log2(rank): 0..max, higher = more memorised."""
    return math.log2(len(candidate_scores) + 1) - math.log2(rank_of(canary_score, candidate_scores))


def max_exposure(n_candidates: int) -> float:
    return math.log2(n_candidates + 1)
