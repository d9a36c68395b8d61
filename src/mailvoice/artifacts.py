"""The files stages hand each other: the dataset folder's names and a trained adapter's folder.

One home for both, so no stage spells a file name or parses another stage's JSON itself.

Dataset folder (``<user>/data``, written by ``prepare``; ``dataset/build.py`` documents the rows):
``records.jsonl`` (raw mail, ``sources/record.py``), ``train_/val_alpaca.jsonl``,
``train_/val_chat.jsonl``, ``train_/val_emailai.jsonl`` (``--emailai-format``),
``dataset_alpaca.json`` (the manifest), ``clean-profile.json``, ``canaries.json`` and
``retrieval/`` (``--rag``).

Adapter folder (``runs/<name>/final``, written by ``train``): PEFT's ``adapter_config.json`` and
weights, ``training_summary.json`` (``train/run.py``: base, chat format, config, …), the
``retrieval/`` index it was trained with, and ``evaluation.json`` (``evaluate``: the gate's
outcome and the SHA-256 of the weights it judged). ``Adapter.gate()`` is the one reading of that
outcome, used by ``deploy --require-eval`` and ``gateway --require-eval`` alike.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .chat import FORMATS, ChatFormat
from .errors import GateFailed, MailvoiceError
from .models import resolve_base_model

# ------------------------------------------------------------------------------------ dataset folder
RECORDS = "records.jsonl"
IMAP_STATE = "imap-state.json"  # the IMAP source's UIDs fetched so far, beside records.jsonl
TRAIN_ALPACA, VAL_ALPACA = "train_alpaca.jsonl", "val_alpaca.jsonl"
TRAIN_CHAT, VAL_CHAT = "train_chat.jsonl", "val_chat.jsonl"
TRAIN_EMAILAI, VAL_EMAILAI = "train_emailai.jsonl", "val_emailai.jsonl"
MANIFEST = "dataset_alpaca.json"
CLEAN_PROFILE = "clean-profile.json"
CANARIES = "canaries.json"  # prepare --plant-canaries (dataset/canaries.py)

# the retrieval index (rag/index.py writes it; a dataset folder or an adapter carries it)
RETRIEVAL = "retrieval"
RETRIEVAL_DOCS, RETRIEVAL_META = "docs.jsonl", "index.json"

# ------------------------------------------------------------------------------------ adapter folder
FINAL = "final"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
TRAINING_SUMMARY = "training_summary.json"
EVALUATION = "evaluation.json"
EVAL_METRICS = "metrics.json"  # evaluate's metrics, beside its results (``--output``)
GATE_EXIT_CODE = GateFailed.exit_code  # a refused deploy exits like a failed evaluation gate: 3


def find_retrieval(path: Path | str | None) -> Path | None:
    """The complete retrieval folder of a dataset folder, an adapter, or a run (its ``final``)."""
    if not path:
        return None
    p = Path(path)
    for cand in (p,) if p.name == RETRIEVAL else (p / RETRIEVAL, p / FINAL / RETRIEVAL):
        if (cand / RETRIEVAL_META).is_file() and (cand / RETRIEVAL_DOCS).is_file():
            return cand
    return None


@dataclass(frozen=True)
class Gate:
    """An adapter's standing with its last evaluation: passed None = no evaluation on record."""

    passed: bool | None
    reason: str
    evaluation: dict | None = None


class Adapter:
    """A trained PEFT adapter folder and the files other stages read from it."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def find(cls, path: Path | str | None) -> Adapter | None:
        """A run folder, its ``final/`` or any PEFT adapter folder; None when there is none."""
        if not path:
            return None
        p = Path(path)
        for cand in (p, p / FINAL):
            if (cand / ADAPTER_CONFIG).is_file():
                return cls(cand)
        return None

    @classmethod
    def open(cls, path: Path | str) -> Adapter:
        """``find``, or a MailvoiceError naming what is missing."""
        found = cls.find(path)
        if found is None:
            raise MailvoiceError(f"no PEFT adapter found at {path} (expected {ADAPTER_CONFIG} or {FINAL}/)")
        return found

    def __repr__(self) -> str:
        return f"Adapter({str(self.path)!r})"

    # ---------------------------------------------------------------- what training recorded
    @cached_property
    def summary(self) -> dict:
        """``training_summary.json``; {} for an adapter trained elsewhere (or unreadable)."""
        return _read_json(self.path / TRAINING_SUMMARY) or {}

    @cached_property
    def config(self) -> dict:
        """PEFT's ``adapter_config.json``."""
        cfg = _read_json(self.path / ADAPTER_CONFIG)
        if cfg is None:
            raise MailvoiceError(f"{self.path / ADAPTER_CONFIG} is missing or not JSON")
        return cfg

    @property
    def base(self) -> str:
        """The base model to load: the recorded local folder if it still exists, else the
        recorded preset/HF id (a preset is built on first use), else PEFT's own record."""
        s = self.summary
        if s:
            path = s.get("base_path")
            if path and Path(path).exists():
                return path
            name = s.get("base_model") or s.get("base_hf_id")
            if not name:
                raise MailvoiceError(f"{self.path}: {TRAINING_SUMMARY} names no base model")
            return resolve_base_model(name)
        return self.config["base_model_name_or_path"]

    @property
    def max_length(self) -> int | None:
        """The token length training cut rows to (``model_max_length``); None if not recorded."""
        v = (self.summary.get("config") or {}).get("model_max_length")
        return int(v) if isinstance(v, int) and v > 0 else None

    @property
    def base_hf_id(self) -> str | None:
        return self.summary.get("base_hf_id") or self.config.get("base_model_name_or_path")

    @property
    def chat_format(self) -> ChatFormat:
        """The prompt format it was trained with: recorded, else read off its tokenizer."""
        fmt = FORMATS.get(self.summary.get("chat_format", ""))
        if fmt is None:
            from transformers import AutoTokenizer  # heavy: only for adapters trained elsewhere

            from .chat import format_for

            fmt = format_for(AutoTokenizer.from_pretrained(str(self.path)))
        return fmt

    @property
    def train_file(self) -> str | None:
        """The data file it learned from (its training config's ``train_file``), if recorded."""
        cfg = self.summary.get("config")
        return cfg.get("train_file") if isinstance(cfg, dict) else None

    @property
    def retrieval_dir(self) -> Path | None:
        return find_retrieval(self.path)

    # ---------------------------------------------------------------- what evaluation recorded
    def digest(self) -> str:
        """SHA-256 over the weights and config: what an evaluation is tied to."""
        h = hashlib.sha256()
        for name in (*ADAPTER_WEIGHTS, ADAPTER_CONFIG):
            p = self.path / name
            if p.is_file():
                h.update(p.read_bytes())
        return h.hexdigest()

    @property
    def evaluation(self) -> dict | None:
        """``evaluation.json`` as written; None when absent. Unreadable → MailvoiceError."""
        p = self.path / EVALUATION
        if not p.is_file():
            return None
        ev = _read_json(p)
        if not isinstance(ev, dict):
            raise MailvoiceError(f"{p} is not a JSON object")
        return ev

    def write_evaluation(self, record: dict) -> Path:
        """Keep an evaluation's outcome beside the weights it judged (their digest added)."""
        from .workspace import write_json

        p = self.path / EVALUATION
        write_json(p, {**record, "adapter_sha256": self.digest()})
        return p

    def gate(self) -> Gate:
        """Trust only an evaluation that passed and was made of these very weights."""
        try:
            ev = self.evaluation
        except MailvoiceError:
            return Gate(False, f"the evaluation on record for {self.path} is unreadable: evaluate it again")
        if ev is None:
            return Gate(None, f"no evaluation on record for {self.path}")
        if ev.get("adapter_sha256") != self.digest():
            return Gate(False, f"the adapter at {self.path} changed since its last evaluation: evaluate it again", ev)
        gate = ev.get("gate") or {}
        if not gate.get("passed"):
            return Gate(False, "its last evaluation failed: " + "; ".join(gate.get("failures") or ["?"]), ev)
        return Gate(True, "its last evaluation passed", ev)

    def require_gate(self) -> dict:
        """The passing evaluation on record, or a MailvoiceError with the gate's exit status."""
        g = self.gate()
        if g.passed is None:
            raise MailvoiceError(f"{g.reason}: run mailvoice evaluate --model {self.path} "
                                 "(with --min-voice-score/--min-novelty/--max-canary-leaks) first", exit_code=GATE_EXIT_CODE)
        if not g.passed:
            raise MailvoiceError(f"refusing to deploy: {g.reason}", exit_code=GATE_EXIT_CODE)
        return g.evaluation or {}


def _read_json(p: Path):
    """The file's JSON, or None when it is missing or unreadable."""
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None
