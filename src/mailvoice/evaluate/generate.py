"""Side-by-side generations (base vs tuned) and held-out perplexity, from one loaded model.

The adapter is toggled off for the base pass (``disable_adapter``), so both sides share weights,
seed, sampling and prompt rendering; the only difference is the LoRA.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import VAL_CHAT, Adapter
from ..chat import SYSTEM_PROMPT, format_for
from ..deploy.modelfile import EMAIL_PARAMETERS
from ..errors import MailvoiceError
from ..workspace import read_jsonl


@dataclass
class GenOptions:
    max_new_tokens: int = 200
    temperature: float = 0.0  # 0 → greedy; sampling is reproducible too (per-row seeds)
    top_p: float = 0.9
    seed: int = 0
    repetition_penalty: float = 1.0  # 1.0 = off; serving uses deploy.modelfile.EMAIL_PARAMETERS["repeat_penalty"]

    @classmethod
    def decoding(cls, name: str = "served", max_new_tokens: int = 200, seed: int = 0) -> GenOptions:
        """``served``: the sampling deploy's Modelfile serves (temperature, top_p, repeat penalty),
        so evaluate judges the emails a user gets; evaluate's default since the voice benchmark
        (docs/benchmarks.md: greedy decoding is mode-seeking, the caricature: above the ceiling,
        further from the author's habits). ``greedy``: the most likely token every time."""
        if name == "greedy":
            return cls(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
        if name != "served":
            raise MailvoiceError(f"unknown decoding {name!r}: served or greedy")
        return cls(max_new_tokens=max_new_tokens, temperature=EMAIL_PARAMETERS["temperature"],
                   top_p=EMAIL_PARAMETERS["top_p"], seed=seed, repetition_penalty=EMAIL_PARAMETERS["repeat_penalty"])


def load_tuned(adapter: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = Adapter(adapter).base
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
             system: str = SYSTEM_PROMPT, batch_size: int = 16, max_prompt_tokens: int | None = None) -> list[dict]:
    """One generation per prompt, ``batch_size`` prompts at a time (left padding).

    ``max_prompt_tokens``: a longer prompt loses quoted context first, as training cut its rows
    (``train.run.shorten_context``): the model answers inputs shaped like those it learned from,
    and a batch of long threads cannot take the machine's memory (prefill attention is quadratic).

    Batching is what makes evaluate fast on CPU: a 135M model spends most of a one-row step in
    per-call overhead, so 16 rows cost little more than one. Rows are grouped by prompt length
    (less padding) and put back in order. Each row samples with its own generator seeded
    ``opts.seed + i`` (``_RowSampler``), so a prompt's draw does not depend on its batch
    neighbours; greedy (temperature 0) needs no seed. ``batch_size=1`` is the old one-by-one path.
    """
    import contextlib

    import torch

    fmt = format_for(tok)
    end_id = tok.convert_tokens_to_ids(fmt.end_token)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else end_id
    ctx = contextlib.nullcontext() if use_adapter else model.disable_adapter()
    def encode(p: str) -> list[int]:
        return tok(fmt.render_prompt(p, system), add_special_tokens=False)["input_ids"]

    encoded = [encode(p) for p in prompts]
    if max_prompt_tokens:
        from ..train.run import shorten_context  # train.run imports torch: late, like torch here

        encoded = [e if len(e) <= max_prompt_tokens else encode(shorten_context(p, lambda u: len(encode(u)) > max_prompt_tokens))
                   for p, e in zip(prompts, encoded, strict=True)]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    out: list[dict | None] = [None] * len(prompts)
    with ctx, torch.no_grad():
        for b in range(0, len(order), max(batch_size, 1)):
            rows = order[b : b + max(batch_size, 1)]
            width = max(len(encoded[i]) for i in rows)
            ids = torch.tensor([[pad_id] * (width - len(encoded[i])) + encoded[i] for i in rows])
            mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in rows])
            kwargs = dict(max_new_tokens=opts.max_new_tokens, eos_token_id=end_id, pad_token_id=pad_id, do_sample=False)
            if opts.repetition_penalty != 1.0:
                kwargs["repetition_penalty"] = opts.repetition_penalty
            if opts.temperature > 0:
                kwargs["logits_processor"] = [_row_sampler([opts.seed + i for i in rows], opts.temperature, opts.top_p)]
            gen = model.generate(input_ids=ids, attention_mask=mask, **kwargs)[:, width:].tolist()
            for i, g in zip(rows, gen, strict=True):
                stopped = end_id in g
                g = g[: g.index(end_id)] if stopped else g
                out[i] = {"text": tok.decode(g, skip_special_tokens=True).strip(), "stopped": stopped, "tokens": len(g)}
                if progress:
                    progress()
    return out  # type: ignore[return-value]


def _row_sampler(seeds: list[int], temperature: float, top_p: float):
    """A logits processor that samples each row's next token (temperature, top-p) with that row's
    own seeded generator and forces it, so HF's greedy search returns it. HF's ``generate`` has one
    global RNG for the whole batch; this keeps per-prompt seeds. transformers imported late: heavy."""
    import torch
    from transformers import LogitsProcessor

    class _RowSampler(LogitsProcessor):
        def __init__(self):
            self.gens = [torch.Generator().manual_seed(s) for s in seeds]

        def __call__(self, input_ids, scores):
            probs = torch.softmax(scores.float() / temperature, dim=-1)
            sorted_p, idx = probs.sort(dim=-1, descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > top_p  # keep the smallest set reaching top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            forced = torch.full_like(scores, float("-inf"))
            for r, g in enumerate(self.gens):
                k = torch.multinomial(sorted_p[r], 1, generator=g)
                forced[r, idx[r, k]] = 0.0
            return forced

    return _RowSampler()


_LOGIT_EXTRAS = ("final_logit_softcapping", "logit_scale", "logits_scaling")  # heads that do more than a matmul


def selected_logits(model, input_ids, attention_mask, keep):
    """The logits at the positions ``keep`` (a bool mask over [batch, length]) only, rows in order.
    The LM head over whole sequences costs batch × length × vocabulary floats, copied again by the
    softmax: a long real thread took 15 GB (the voice benchmark was killed for memory). The
    decoder's last hidden state at the few scored positions, through the head, is the same
    numbers for almost nothing. A head with extras (soft-capping, scaling) runs whole."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = getattr(base, "config", None)
    if not hasattr(base, "get_decoder") or any(getattr(cfg, k, None) for k in _LOGIT_EXTRAS):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[keep]
    hidden = base.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return base.get_output_embeddings()(hidden[keep])


def reply_perplexity(model, tok, rows: list[dict], *, use_adapter: bool = True, batch_size: int = 8,
                     max_len: int = 2048, progress=None) -> float | None:
    """exp(mean NLL) of the reply tokens (and end token) given the prompt: lower = more 'like this'.
    Rows are cut as training cuts them (``train.run.tokenize_rows``: a row over ``max_len`` tokens
    loses quoted context first; a reply that alone does not fit is left out), so the model is
    scored on inputs shaped like those it learned from and memory stays bounded (attention is
    quadratic in length). Then ``batch_size`` at a time, grouped by length and right-padded
    (padding masked out of attention and loss), the head only at the reply positions."""
    import contextlib

    import torch

    from ..train.run import TokenizeStats, tokenize_rows

    if not rows:
        return None
    fmt = format_for(tok)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    ctx = contextlib.nullcontext() if use_adapter else model.disable_adapter()
    nll, count = 0.0, 0
    stats = TokenizeStats()
    pairs = [(e["input_ids"], e["labels"]) for e in tokenize_rows(tok, fmt, rows, max_len, stats)]
    if progress and stats.dropped_too_long:
        progress(stats.dropped_too_long)
    if not pairs:
        return None
    pairs.sort(key=lambda p: len(p[0]))  # similar lengths together: less padding (the sum is order-free)
    with ctx, torch.no_grad():
        for b in range(0, len(pairs), max(batch_size, 1)):
            chunk = pairs[b : b + max(batch_size, 1)]
            width = max(len(ids) for ids, _ in chunk)
            ids_t = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in chunk])
            mask_t = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk])
            lab_t = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk])
            tgt = lab_t[:, 1:]  # position i predicts token i + 1
            keep = torch.zeros_like(mask_t, dtype=torch.bool)
            keep[:, :-1] = tgt != -100
            logits = selected_logits(model, ids_t, mask_t, keep)
            loss = torch.nn.functional.cross_entropy(logits.float(), tgt[tgt != -100], reduction="sum")
            nll += float(loss)
            count += int((tgt != -100).sum())
            if progress:
                progress(len(chunk))
    return math.exp(nll / max(count, 1))


def val_rows(data_dir: Path | None) -> list[dict]:
    if not data_dir:
        return []
    p = Path(data_dir) / VAL_CHAT
    return read_jsonl(p) if p.is_file() else []
