"""Cost before launch: GPU hours from the dataset's token count and the GPU class's tokens/s.

tokens trained = tokens per epoch × epochs (or ``max_steps`` × rows per step × mean row length);
hours = tokens trained ÷ tokens/s ÷ 3600 + a fixed overhead (provisioning, setup, weight
download, final upload); cost = hours × price per hour.

Tokens/s comes, in this order, from ``--tokens-per-s``, from runs this workspace has measured on
that GPU class (``mailvoice cloud fetch`` records each finished run's measured tokens/s in
``<workspace>/cloud-throughput.json``), else from the prior below. The prior is an order of
magnitude for QLoRA on an 8B model with this recipe (padding-free, gradient checkpointing), not
a measurement: it is labelled ``prior`` wherever it is shown. Models of another size are scaled
by parameter count read from the name (``…-70B-…``). Prices are typical per-GPU-hour asks on
Vast.ai; pass ``--price-per-hour`` for the offer you see.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..chat import format_for, pad_token_for
from ..errors import MailvoiceError
from ..models import PRESETS, resolve_base_model
from ..train.run import TokenizeStats, load_tokenizer, tokenize_rows
from ..workspace import read_jsonl, resolve_root, write_json

# heavy: transformers (a local tokenizer for the count) is imported when it is needed.

# GPU class → (prior tokens/s for an 8B QLoRA run, typical $/h, GPU memory GiB, default disk GB)
GPUS: dict[str, dict] = {
    "RTX4090": {"tokens_per_s": 1500.0, "price_per_hour": 0.40, "memory_gb": 24},
    "A100": {"tokens_per_s": 2500.0, "price_per_hour": 1.20, "memory_gb": 40},
    "A100-80GB": {"tokens_per_s": 2700.0, "price_per_hour": 1.50, "memory_gb": 80},
    "H100": {"tokens_per_s": 5000.0, "price_per_hour": 2.40, "memory_gb": 80},
}
OVERHEAD_HOURS = 0.25
CHARS_PER_TOKEN = 4.0  # English mail with a Llama-3-class tokenizer, when no tokenizer is at hand
THROUGHPUT_FILE = "cloud-throughput.json"
_PARAMS = re.compile(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")


def check_gpu(gpu: str) -> str:
    for name in GPUS:
        if name.lower() == gpu.lower():
            return name
    raise MailvoiceError(f"unknown --gpu {gpu!r}: choose from {', '.join(GPUS)}")


def params_b(base_model: str) -> float | None:
    """Billions of parameters from a model name (``Llama-3.1-8B`` → 8), or None."""
    m = _PARAMS.findall(Path(base_model).name)
    return float(m[-1]) if m else None


@dataclass
class Estimate:
    gpu: str
    base_model: str
    rows: int
    tokens_per_epoch: int
    token_count: str  # "exact" (the base model's tokenizer) | "approx" (characters / 4)
    tokens_total: int
    tokens_per_s: float
    tokens_per_s_source: str  # "given" | "measured (N runs)" | "prior"
    overhead_hours: float
    gpu_hours: float
    price_per_hour: float
    price_source: str  # "given" | "typical"
    cost_usd: float
    created_at: float

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (f"estimate: {self.tokens_total:,} tokens ({self.token_count}) at {self.tokens_per_s:,.0f} tok/s "
                f"({self.tokens_per_s_source}) on {self.gpu} → {self.gpu_hours:.2f} GPU h "
                f"× ${self.price_per_hour:.2f}/h ({self.price_source}) ≈ ${self.cost_usd:.2f}")


def _rows_text(rows: list[dict]) -> list[str]:
    return ["\n".join(str(m.get("content", "")) for m in r.get("messages", [])) for r in rows]


def count_tokens(cfg, data_dir: Path) -> tuple[int, int, str]:
    """(rows, tokens per epoch, "exact"|"approx") of the training file, as the trainer would see it."""
    train_path = Path(data_dir) / cfg.train_file
    if not train_path.is_file():
        raise MailvoiceError(f"training data not found: {train_path} (run prepare first)")
    rows = read_jsonl(train_path)
    if not rows:
        raise MailvoiceError(f"{train_path} is empty")
    try:
        tok_fmt = _local_tokenizer(cfg.base_model)
    except Exception:
        tok_fmt = None
    if tok_fmt is not None:
        stats = TokenizeStats()
        tokenize_rows(tok_fmt[0], tok_fmt[1], rows, cfg.model_max_length, stats)
        return stats.rows, stats.tokens, "exact"
    per_row = [min(math.ceil(len(t) / CHARS_PER_TOKEN) + 40, cfg.model_max_length) for t in _rows_text(rows)]
    return len(rows), sum(per_row), "approx"


def _local_tokenizer(base_model: str):
    """The base model's tokenizer when it is on this machine (a folder, a preset, the HF cache)."""

    p = Path(base_model).expanduser()
    if base_model in PRESETS or p.is_dir():
        return load_tokenizer(resolve_base_model(base_model))
    from transformers import AutoTokenizer


    tok = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
    tok.pad_token = pad_token_for(tok)
    return tok, format_for(tok)


def measured_throughput(gpu: str, base_model: str, root=None) -> list[float]:
    path = resolve_root(root) / THROUGHPUT_FILE
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [float(r["tokens_per_s"]) for r in data.get("runs", [])
            if r.get("gpu") == gpu and r.get("base_model") == base_model and r.get("tokens_per_s")]


def record_throughput(gpu: str, base_model: str, tokens_per_s: float, job: str, root=None) -> None:
    """Remember a finished run's measured tokens/s for later estimates (no mail, no keys)."""
    path = resolve_root(root) / THROUGHPUT_FILE
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        data = {"runs": []}
    runs = [r for r in data.get("runs", []) if r.get("job") != job]
    runs.append({"job": job, "gpu": gpu, "base_model": base_model, "tokens_per_s": tokens_per_s, "at": time.time()})
    write_json(path, {"runs": runs[-200:]})


def estimate_cost(
    cfg,
    data_dir: Path,
    gpu: str,
    *,
    price_per_hour: float | None = None,
    tokens_per_s: float | None = None,
    overhead_hours: float = OVERHEAD_HOURS,
    root=None,
) -> Estimate:
    gpu = check_gpu(gpu)
    rows, per_epoch, how = count_tokens(cfg, data_dir)
    if cfg.max_steps > 0:
        per_step = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
        total = int(cfg.max_steps * per_step * per_epoch / max(rows, 1))
    else:
        total = int(per_epoch * cfg.num_train_epochs)
    if tokens_per_s:
        tps, src = float(tokens_per_s), "given"
    else:
        seen = measured_throughput(gpu, cfg.base_model, root)
        if seen:
            tps, src = statistics.median(seen), f"measured ({len(seen)} run{'s' if len(seen) > 1 else ''})"
        else:
            tps, src = GPUS[gpu]["tokens_per_s"], "prior"
            size = params_b(cfg.base_model)
            if size:
                tps = tps * 8.0 / size
    if tps <= 0:
        raise MailvoiceError("tokens per second must be > 0")
    price, psrc = (float(price_per_hour), "given") if price_per_hour is not None else (GPUS[gpu]["price_per_hour"], "typical")
    if price < 0:
        raise MailvoiceError("price per hour must be 0 or more")
    hours = total / tps / 3600 + overhead_hours
    return Estimate(gpu, cfg.base_model, rows, per_epoch, how, total, round(tps, 1), src, overhead_hours,
                    round(hours, 3), price, psrc, round(hours * price, 2), time.time())
