"""The training config: the guide's YAML keys, validated, with our additions documented.

Unknown keys are an error that names the nearest valid key: a typo like ``learning_rat`` must
not silently fall back to a default and waste a GPU night.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..artifacts import TRAIN_CHAT, VAL_CHAT
from ..errors import MailvoiceError


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # --- the guide's keys, verbatim ---
    base_model: str = "smollm2-135m"
    num_train_epochs: float = 3
    per_device_train_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    use_4bit: bool = False
    gradient_checkpointing: bool = False
    model_max_length: int = Field(2048, ge=32)
    save_steps: int = Field(50, ge=1)
    eval_steps: int = Field(50, ge=1)
    train_file: str = TRAIN_CHAT
    val_file: str | None = VAL_CHAT
    output_dir: str = "runs/latest"

    # --- ours ---
    max_steps: int = -1  # > 0 overrides epochs (demo, tests)
    seed: int = 42
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    lr_scheduler_type: str = "cosine"
    weight_decay: float = 0.0
    logging_steps: int = Field(5, ge=1)
    save_total_limit: int = Field(3, ge=1)
    min_checkpoints: int = Field(2, ge=1)  # small datasets still get checkpoints before the end
    early_stopping_patience: int | None = None
    padding_free: bool = True  # no padding to a fixed length: per-example position ids
    # --- speed levers (each measured by bench/gpu/run.sh; docs/training.md "On a GPU") ---
    # "auto": transformers' default (SDPA). "flex_attention" keeps packed rows apart with a block
    # mask instead of a materialised (T×T) one; flash_attention_2/3 need their own packages.
    attn_implementation: Literal["auto", "sdpa", "flex_attention", "flash_attention_2", "flash_attention_3", "eager"] = "auto"
    # Liger's Triton layer kernels (RMSNorm, SwiGLU, RoPE); its fused linear cross-entropy is not
    # needed: TRL's own fused LM head already scores reply tokens without building full logits.
    use_liger_kernel: bool = False
    torch_compile: bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    report_to: list[str] = ["tensorboard"]

    @model_validator(mode="after")
    def _check(self):
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError("num_train_epochs must be > 0 unless max_steps is set")
        return self


KNOWN_KEYS = sorted(TrainConfig.model_fields)


def load_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    p = Path(path)
    if not p.is_file():
        raise MailvoiceError(f"config not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MailvoiceError(f"{p}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise MailvoiceError(f"{p}: expected a mapping of keys to values")
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate_config(raw, source=str(p))


def validate_config(raw: dict, source: str = "config") -> TrainConfig:
    for key in raw:
        if key not in TrainConfig.model_fields:
            near = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise MailvoiceError(f"{source}: unknown key {key!r}{hint}")
    try:
        return TrainConfig(**raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "config"
        raise MailvoiceError(f"{source}: {loc}: {err['msg']}") from None
