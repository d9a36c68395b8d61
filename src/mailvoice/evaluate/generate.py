"""Side-by-side generations (base vs tuned) and held-out perplexity, from one loaded model.

The adapter is toggled off for the base pass (``disable_adapter``), so both sides share weights,
seed, sampling and prompt rendering; the only difference is the LoRA.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..chat import SYSTEM_PROMPT, format_for
from ..errors import MailvoiceError
from ..workspace import read_jsonl


@dataclass
class GenOptions:
    max_new_tokens: int = 200
    temperature: float = 0.0  # 0 → greedy, reproducible
    top_p: float = 0.9
    seed: int = 0
    repetition_penalty: float = 1.0  # 1.0 = off; serving uses deploy.modelfile.EMAIL_PARAMETERS["repeat_penalty"]


def resolve_adapter(model: str | Path) -> Path:
    """Accept a run folder, its final/ folder or any PEFT adapter folder."""
    p = Path(model)
    for cand in (p, p / "final"):
        if (cand / "adapter_config.json").is_file():
            return cand
    raise MailvoiceError(f"no PEFT adapter found at {p} (expected adapter_config.json or final/)")


def base_of(adapter: Path) -> str:
    summary = adapter / "training_summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        path = s.get("base_path")
        if path and Path(path).exists():
            return path
        from ..models import resolve_base_model

        return resolve_base_model(s.get("base_model") or s["base_hf_id"])
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    return cfg["base_model_name_or_path"]


def trained_on(adapter: Path) -> str | None:
    """The data file the adapter learned from (``train_file`` of its training config), if recorded;
    ``adapter`` may be a run folder (its ``final/``)."""
    for summary in (Path(adapter) / "training_summary.json", Path(adapter) / "final" / "training_summary.json"):
        if summary.is_file():
            try:
                return json.loads(summary.read_text())["config"].get("train_file")
            except (ValueError, KeyError, TypeError, AttributeError):
                return None
    return None


def load_tuned(adapter: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = base_of(adapter)
    tok = AutoTokenizer.from_pretrained(str(adapter))
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model, tok


def load_prompts(path: Path) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise MailvoiceError(f"test data not found: {p}")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError:
        raise MailvoiceError(f"{p}: not valid JSON (expected [{{\"prompt\": …}}])") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) and isinstance(d.get("prompt"), str) for d in data):
        raise MailvoiceError(f"{p}: expected a list of objects with a \"prompt\" string")
    return [d["prompt"] for d in data]


def generate(model, tok, prompts: list[str], opts: GenOptions, *, use_adapter: bool = True, progress=None,
             system: str = SYSTEM_PROMPT) -> list[dict]:
    import contextlib

    import torch

    fmt = format_for(tok)
    end_id = tok.convert_tokens_to_ids(fmt.end_token)
    ctx = contextlib.nullcontext() if use_adapter else model.disable_adapter()
    out = []
    with ctx, torch.no_grad():
        for i, prompt in enumerate(prompts):
            torch.manual_seed(opts.seed + i)
            text = fmt.render_prompt(prompt, system)
            ids = tok(text, add_special_tokens=False, return_tensors="pt")
            kwargs = dict(max_new_tokens=opts.max_new_tokens, eos_token_id=end_id, pad_token_id=tok.pad_token_id)
            if opts.repetition_penalty != 1.0:
                kwargs["repetition_penalty"] = opts.repetition_penalty
            if opts.temperature > 0:
                kwargs.update(do_sample=True, temperature=opts.temperature, top_p=opts.top_p)
            else:
                kwargs.update(do_sample=False)
            gen = model.generate(**ids, **kwargs)[0][ids["input_ids"].shape[1]:].tolist()
            stopped = bool(gen) and gen[-1] == end_id
            if stopped:
                gen = gen[:-1]
            out.append({"text": tok.decode(gen, skip_special_tokens=True).strip(), "stopped": stopped, "tokens": len(gen)})
            if progress:
                progress()
    return out


def reply_perplexity(model, tok, rows: list[dict], *, use_adapter: bool = True) -> float | None:
    """exp(mean NLL) of the reply tokens (and end token) given the prompt: lower = more 'like this'."""
    import contextlib

    import torch

    from ..train.run import encode_pair

    if not rows:
        return None
    fmt = format_for(tok)
    ctx = contextlib.nullcontext() if use_adapter else model.disable_adapter()
    nll, count = 0.0, 0
    with ctx, torch.no_grad():
        for row in rows:
            m = row["messages"]
            ids, labels = encode_pair(tok, fmt, m[0]["content"], m[1]["content"], m[2]["content"])
            ids_t = torch.tensor([ids])
            lab_t = torch.tensor([labels])
            logits = model(input_ids=ids_t).logits[:, :-1]
            tgt = lab_t[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), ignore_index=-100, reduction="sum"
            )
            nll += float(loss)
            count += int((tgt != -100).sum())
    return math.exp(nll / max(count, 1))


def val_rows(data_dir: Path | None) -> list[dict]:
    if not data_dir:
        return []
    p = Path(data_dir) / "val_chat.jsonl"
    return read_jsonl(p) if p.is_file() else []
