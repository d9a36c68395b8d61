"""The training recipe, top to bottom: data → tokens with a reply-only loss mask → LoRA → TRL.

We tokenize ourselves (through ``chat.ChatFormat``, the one prompt definition) and hand TRL's
``SFTTrainer`` ready ``input_ids``/``labels``, so the loss mask is ours and tested: the loss
covers the reply and its end-of-turn token, nothing else. Batches are padding-free (rows
concatenated with per-example position ids), so no compute goes to padding.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import FINAL, RETRIEVAL, RETRIEVAL_META, TRAINING_SUMMARY, find_retrieval
from ..chat import ChatFormat, format_for, pad_token_for
from ..errors import MailvoiceError
from ..models import hf_id_of, resolve_base_model
from ..workspace import make_private_dir, privatise_tree, read_jsonl, write_json
from .config import TrainConfig

COMPLETE_MARKER = "mailvoice-checkpoint.json"


@dataclass
class TokenizeStats:
    rows: int = 0
    context_truncated: int = 0
    dropped_too_long: int = 0
    tokens: int = 0
    target_tokens: int = 0


def encode_pair(tok, fmt: ChatFormat, system: str, user: str, reply: str) -> tuple[list[int], list[int]]:
    prompt = tok(fmt.render_prompt(user, system), add_special_tokens=False)["input_ids"]
    target = tok(fmt.render_reply(reply), add_special_tokens=False)["input_ids"]
    return prompt + target, [-100] * len(prompt) + target


def shorten_context(user: str, too_long: Callable[[str], bool]) -> str:
    """``user`` with its quoted context (everything after the first blank line) cut by a quarter at
    a time, marked ``[…]``, until ``too_long`` says it fits or no context is left. Training cuts
    long rows this way, and evaluate cuts its prompts the same way, so both see the same shapes."""
    head, _, context = user.partition("\n\n")
    cut = user
    while context and too_long(cut):
        context = context[: int(len(context) * 0.75)].rstrip()
        cut = f"{head}\n\n{context} […]" if context else head
    return cut


def tokenize_rows(tok, fmt: ChatFormat, rows: list[dict], max_len: int, stats: TokenizeStats) -> list[dict]:
    """Long rows lose quoted context first; a reply that alone does not fit is dropped and counted."""
    out = []
    for row in rows:
        msgs = row["messages"]
        system, user, reply = msgs[0]["content"], msgs[1]["content"], msgs[2]["content"]
        ids, labels = encode_pair(tok, fmt, system, user, reply)
        if len(ids) > max_len:
            cut = shorten_context(user, lambda u: len(encode_pair(tok, fmt, system, u, reply)[0]) > max_len)
            ids, labels = encode_pair(tok, fmt, system, cut, reply)
            if len(ids) > max_len:
                stats.dropped_too_long += 1
                continue
            stats.context_truncated += 1
        stats.rows += 1
        stats.tokens += len(ids)
        stats.target_tokens += sum(1 for x in labels if x != -100)
        out.append({"input_ids": ids, "labels": labels})
    return out


def load_tokenizer(base: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    fmt = format_for(tok)
    pad = pad_token_for(tok)
    tok.pad_token = pad
    tok.padding_side = "right"
    return tok, fmt


def pick_device_and_dtype(cfg: TrainConfig):
    import torch

    cuda = torch.cuda.is_available()
    if cfg.dtype != "auto":
        dtype = getattr(torch, cfg.dtype)
    elif cuda and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    else:
        dtype = torch.float32
    return ("cuda" if cuda else "cpu"), dtype


def load_model(cfg: TrainConfig, base: str, notice: Callable[[str], None] = print):
    import torch
    from transformers import AutoModelForCausalLM

    device, dtype = pick_device_and_dtype(cfg)
    kwargs: dict = {"dtype": dtype}
    if cfg.attn_implementation != "auto":
        kwargs["attn_implementation"] = cfg.attn_implementation
    if cfg.use_4bit:
        if device != "cuda":
            notice("use_4bit needs CUDA (bitsandbytes); training plain LoRA on CPU instead")
        else:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type=cfg.bnb_4bit_quant_type,
                bnb_4bit_compute_dtype=dtype,
                bnb_4bit_quant_storage=dtype,
                bnb_4bit_use_double_quant=True,
            )
    try:
        model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    except OSError as e:
        raise MailvoiceError(f"cannot load base model {base!r}: {str(e).splitlines()[0]}") from None
    if device == "cuda" and not cfg.use_4bit:
        model = model.to(device)
    # No KV cache while training: transformers builds the per-example (packed) attention mask
    # from position_ids only when there is no cache; with one, packed rows would see each other.
    model.config.use_cache = False
    del torch
    return model


def find_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint whose save finished (we write the marker only after it completes)."""
    cands = []
    for d in Path(run_dir).glob("checkpoint-*"):
        try:
            step = int(d.name.split("-")[-1])
        except ValueError:
            continue
        if (d / COMPLETE_MARKER).is_file() and (d / "trainer_state.json").is_file():
            cands.append((step, d))
    return max(cands)[1] if cands else None


def data_hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p and Path(p).is_file():
            h.update(Path(p).read_bytes())
    return h.hexdigest()


@dataclass
class TrainResult:
    run_dir: Path
    final_dir: Path
    summary: dict = field(default_factory=dict)


@dataclass
class TrainData:
    """The user's rows, tokenized for the base model, and what tokenizing cost."""

    train_path: Path
    val_path: Path | None
    base: str
    tok: object
    fmt: ChatFormat
    train_rows: list[dict]
    val_rows: list[dict]
    tstats: TokenizeStats
    vstats: TokenizeStats


def load_data(cfg: TrainConfig, data_dir: Path) -> TrainData:
    """Step 1: the prepared dataset → token rows with the reply-only loss mask."""
    train_path = Path(data_dir) / cfg.train_file
    val_path = Path(data_dir) / cfg.val_file if cfg.val_file else None
    if not train_path.is_file():
        raise MailvoiceError(f"training data not found: {train_path} (run prepare first)")
    base = resolve_base_model(cfg.base_model)
    tok, fmt = load_tokenizer(base)
    tstats = TokenizeStats()
    train_rows = tokenize_rows(tok, fmt, read_jsonl(train_path), cfg.model_max_length, tstats)
    vstats = TokenizeStats()
    val_rows = (
        tokenize_rows(tok, fmt, read_jsonl(val_path), cfg.model_max_length, vstats)
        if val_path and val_path.is_file()
        else []
    )
    if not train_rows:
        raise MailvoiceError("no training rows left after tokenization (all longer than model_max_length?)")
    return TrainData(train_path, val_path, base, tok, fmt, train_rows, val_rows, tstats, vstats)


@dataclass
class RunPlan:
    """How long the run is and how often it saves and evaluates."""

    per_step: int
    steps_per_epoch: int
    total_steps: int
    save_steps: int
    eval_steps: int
    has_val: bool


def plan_run(cfg: TrainConfig, rows: int, has_val: bool) -> RunPlan:
    """Step 2: epochs over the user's rows (``max_steps`` > 0 overrides) → steps and intervals."""
    per_step = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    steps_per_epoch = math.ceil(rows / per_step)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(steps_per_epoch * cfg.num_train_epochs)
    # The original recipe saved every 100 steps and short runs never reached one: cap the interval.
    save_steps = max(1, min(cfg.save_steps, total_steps // cfg.min_checkpoints))
    eval_steps = max(1, min(cfg.eval_steps, save_steps))
    return RunPlan(per_step, steps_per_epoch, total_steps, save_steps, eval_steps, has_val)


def lora_config(cfg: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules,
        task_type="CAUSAL_LM",
    )


def sft_config(cfg: TrainConfig, run_dir: Path, plan: RunPlan, device: str, dtype):
    """Step 3: ``TrainConfig`` + the plan → TRL's ``SFTConfig`` (our rows are already tokenized)."""
    import torch
    from trl import SFTConfig

    has_val, early = plan.has_val, bool(plan.has_val and cfg.early_stopping_patience)
    # transformers 5.24 renamed gradient_checkpointing (now a deprecated alias); CUDA images often
    # ship an older 5.x (5.17, say) that knows only the old name.
    fields = SFTConfig.__dataclass_fields__
    checkpointing_arg = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    return SFTConfig(
        output_dir=str(run_dir),
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=int(cfg.warmup_ratio * plan.total_steps),
        weight_decay=cfg.weight_decay,
        logging_steps=min(cfg.logging_steps, max(1, plan.save_steps)),
        save_strategy="steps",
        save_steps=plan.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="steps" if has_val else "no",
        eval_steps=plan.eval_steps if has_val else None,
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss" if early else None,
        greater_is_better=False if early else None,
        **{checkpointing_arg: cfg.gradient_checkpointing},
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=cfg.report_to,
        disable_tqdm=True,
        padding_free=cfg.padding_free,
        max_length=None,  # rows are truncated above, context first
        completion_only_loss=None,
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        save_only_model=False,
        use_liger_kernel=cfg.use_liger_kernel and device == "cuda",
        torch_compile=cfg.torch_compile,
        # counted per step for the step log (tokens/s in bench/gpu/run.sh)
        include_num_input_tokens_seen="all" if cfg.padding_free else "non_padding",
    )


def resume_checkpoint(resume: str | None, run_dir: Path, notice: Callable[[str], None] = print) -> str | None:
    """``--resume-from-checkpoint``: ``auto`` (the newest complete one, if any) or a path."""
    if resume == "auto":
        found = find_checkpoint(run_dir)
        if not found:
            notice("no complete checkpoint found: starting from the beginning")
        return str(found) if found else None
    if resume:
        if not (Path(resume) / "trainer_state.json").is_file():
            raise MailvoiceError(f"not a complete checkpoint: {resume}")
        return resume
    return None


def train(
    cfg: TrainConfig,
    *,
    data_dir: Path,
    run_dir: Path,
    resume: str | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    notice: Callable[[str], None] = print,
    callbacks: list | None = None,
    time_budget_s: float | None = None,
) -> TrainResult:
    """Train one LoRA run. ``on_checkpoint(path)`` runs after every completed checkpoint save
    (the vault plugs encrypted upload in here); ``callbacks`` are extra ``TrainerCallback``s.

    The run is sized in epochs over the user's rows (``num_train_epochs``; ``max_steps`` > 0
    overrides); the planned steps are announced before it starts and an ETA after the first
    steps. ``time_budget_s`` caps the wall time: the run saves and stops at the last step that
    fits, and the summary says what was cut (``time_budget``)."""
    # torch, datasets, transformers and TRL load only when a run starts (seconds of imports).
    import torch
    from datasets import Dataset
    from transformers import EarlyStoppingCallback, PrinterCallback
    from trl import SFTTrainer

    from .callback import CheckpointCallback

    torch.manual_seed(cfg.seed)
    data = load_data(cfg, data_dir)
    run_dir = make_private_dir(Path(run_dir))
    plan = plan_run(cfg, len(data.train_rows), bool(data.val_rows))
    notice(plan_text(len(data.train_rows), plan.per_step, cfg.num_train_epochs, cfg.max_steps, plan.total_steps,
                     time_budget_s))

    device, dtype = pick_device_and_dtype(cfg)
    model = load_model(cfg, data.base, notice)
    model.config.pad_token_id = data.tok.pad_token_id
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "tensorboard")
    args = sft_config(cfg, run_dir, plan, device, dtype)
    if cfg.use_liger_kernel and device != "cuda":
        notice("use_liger_kernel needs CUDA (Triton kernels); training without it")

    clock = StepClock(plan.total_steps, time_budget_s)
    hook = CheckpointCallback(run_dir, clock, on_checkpoint=on_checkpoint, progress=progress, notice=notice,
                              sync=torch.cuda.synchronize if device == "cuda" else (lambda: None))
    callbacks = [hook, *(callbacks or [])]
    if plan.has_val and cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(data.train_rows),
        eval_dataset=Dataset.from_list(data.val_rows) if plan.has_val else None,
        processing_class=data.tok,
        peft_config=lora_config(cfg),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # our progress bar replaces its raw dict prints
    resume_path = resume_checkpoint(resume, run_dir, notice)

    t0 = time.time()
    with hook.stop_on_signals():
        out = trainer.train(resume_from_checkpoint=resume_path)
    wall = time.time() - t0
    if clock.stopped_at is not None:
        notice(clock.report(trainer.state.global_step, plan.steps_per_epoch)["message"]
               + " (the learning-rate schedule was planned for the full run; resume with --resume-from-checkpoint auto)")

    staged = stage_final(trainer, data.tok, run_dir)
    retrieval = _carry_retrieval(Path(data_dir), staged)
    summary = summarise(cfg, data, plan, trainer.state, out.training_loss, wall, device, clock, hook, retrieval)
    final = save_final(staged, run_dir, summary)
    return TrainResult(run_dir=run_dir, final_dir=final, summary=summary)


def stage_final(trainer, tok, run_dir: Path) -> Path:
    """The adapter and tokenizer into ``.final.tmp``: ``final/`` only ever appears complete."""
    tmp_final = run_dir / ".final.tmp"
    if tmp_final.exists():
        shutil.rmtree(tmp_final)
    trainer.model.save_pretrained(str(tmp_final))
    tok.save_pretrained(str(tmp_final))
    return tmp_final


def summarise(cfg: TrainConfig, data: TrainData, plan: RunPlan, state, final_train_loss: float, wall: float,
              device: str, clock: StepClock, hook, retrieval: dict | None) -> dict:
    """``training_summary.json``: what was trained on, how long it ran, what it cost."""
    import torch

    tstats, vstats = data.tstats, data.vstats
    history = state.log_history
    epochs_done = state.epoch or 0
    trained_tokens = tstats.tokens * (epochs_done if cfg.max_steps <= 0
                                      else state.global_step * plan.per_step / max(len(data.train_rows), 1))
    summary = {
        "base_model": cfg.base_model,
        "base_hf_id": hf_id_of(cfg.base_model),
        "base_path": data.base,
        "chat_format": data.fmt.name,
        "config": cfg.model_dump(),
        "data_hash": data_hash(data.train_path, data.val_path) if data.val_path else data_hash(data.train_path),
        "rows": {"train": tstats.rows, "val": vstats.rows},
        "context_truncated": tstats.context_truncated + vstats.context_truncated,
        "dropped_too_long": tstats.dropped_too_long + vstats.dropped_too_long,
        "steps": state.global_step,
        "planned_steps": plan.total_steps,
        "steps_per_epoch": plan.steps_per_epoch,
        "time_budget": clock.report(state.global_step, plan.steps_per_epoch),
        "save_steps": plan.save_steps,
        "epochs": epochs_done,
        "train_loss": [h["loss"] for h in history if "loss" in h],
        "eval_loss": [h["eval_loss"] for h in history if "eval_loss" in h],
        "final_train_loss": final_train_loss,
        "wall_time_s": round(wall, 2),
        "tokens_per_s": round(trained_tokens / wall, 1) if wall > 0 else None,
        "useful_token_fraction": 1.0 if cfg.padding_free else None,
        "target_token_fraction": round(tstats.target_tokens / max(tstats.tokens, 1), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "device": device,
        "stopped_by": hook.stopped_by,
        "step_log": hook.step_log,
        "retrieval": retrieval,
    }
    if device == "cuda":
        summary["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        summary["peak_gpu_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
    return summary


def save_final(staged: Path, run_dir: Path, summary: dict) -> Path:
    """The summary beside the weights, private modes, then one rename to ``final/``."""
    final = run_dir / FINAL
    write_json(staged / TRAINING_SUMMARY, summary)
    privatise_tree(staged)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staged, final)
    write_json(run_dir / TRAINING_SUMMARY, summary)
    return final


def parse_duration(text: str) -> float:
    """``--time-budget``: seconds, or a number with s/m/h (``90``, ``45m``, ``1.5h``)."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text).lower())
    if not m or float(m.group(1)) <= 0:
        raise MailvoiceError(f"--time-budget {text!r}: expected a positive duration like 600, 45m or 1.5h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def plan_text(rows: int, per_step: int, epochs: float, max_steps: int, total_steps: int,
               time_budget_s: float | None) -> str:
    """The line announced before training starts: what the run will do and why."""
    if max_steps > 0:
        why = f"max_steps {max_steps} (≈ {max_steps * per_step / max(rows, 1):.1f} epochs over {rows} rows)"
    else:
        why = f"{epochs:g} epochs × {rows} rows / {per_step} rows per step"
    budget = f"; wall-time budget {time_budget_s:.0f}s" if time_budget_s else ""
    return f"planned {total_steps} steps: {why}{budget}; ETA after the first steps"


class StepClock:
    """Step timing for the ETA notice and the wall-time budget (pure: no trainer state kept)."""

    def __init__(self, total_steps: int, budget_s: float | None, *, warm_steps: int = 2, now=time.monotonic):
        self.total, self.budget, self.warm, self.now = total_steps, budget_s, warm_steps, now
        self.t0 = now()
        self.first_step: int | None = None
        self.step_started = self.t0
        self.durations: list[float] = []
        self.stopped_at: int | None = None
        self.announced = False

    def begin(self, step: int) -> None:
        if self.first_step is None:
            self.first_step = step
        self.step_started = self.now()

    def end(self, step: int) -> str | None:
        """Records a step; returns the ETA line once, after ``warm_steps`` steps."""
        self.durations.append(self.now() - self.step_started)
        if self.announced or len(self.durations) < min(self.warm, self.total):
            return None
        self.announced = True
        per = self.per_step()
        left = max(self.total - step, 0) * per
        cut = ""
        if self.budget and self.elapsed() + left > self.budget:
            fit = step + int(max(self.budget - self.elapsed(), 0) // per)
            cut = f"; the {self.budget:.0f}s budget will cut it at about step {min(fit, self.total)}"
        return f"{per:.1f}s per step: ETA {left / 60:.1f} min for the remaining {self.total - step} steps{cut}"

    def elapsed(self) -> float:
        return self.now() - self.t0

    def per_step(self) -> float:
        """The later steps' mean (the first includes warm-up) once there are two."""
        d = self.durations[1:] if len(self.durations) > 1 else self.durations
        return sum(d) / max(len(d), 1)

    def out_of_time(self, step: int) -> bool:
        """True when another step would overrun the budget (it stops *before* overrunning)."""
        if not self.budget or step >= self.total or not self.durations:
            return False
        if self.elapsed() + self.per_step() > self.budget:
            self.stopped_at = step
            return True
        return False

    def report(self, step: int, steps_per_epoch: int) -> dict | None:
        if not self.budget:
            return None
        cut = self.stopped_at is not None
        return {"budget_s": self.budget, "cut": cut, "stopped_at_step": step, "planned_steps": self.total,
                "steps_cut": self.total - step if cut else 0,
                "epochs_done": round(step / max(steps_per_epoch, 1), 2),
                "message": (f"time budget {self.budget:.0f}s reached: stopped at step {step} of {self.total} "
                            f"({step / max(steps_per_epoch, 1):.2f} of {self.total / max(steps_per_epoch, 1):.2f} epochs); "
                            f"{self.total - step} steps cut") if cut else
                           f"finished all {self.total} steps within the {self.budget:.0f}s budget"}


def _carry_retrieval(data_dir: Path, final: Path) -> dict | None:
    """The prompts were built with retrieval (``prepare --rag``): the adapter carries its index,
    so evaluate and serving retrieve from the same emails with the same settings."""
    src = find_retrieval(data_dir)
    if src is None:
        return None
    shutil.copytree(src, final / RETRIEVAL, dirs_exist_ok=True)
    return json.loads((final / RETRIEVAL / RETRIEVAL_META).read_text())
