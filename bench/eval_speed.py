"""evaluate's torch passes, batched (now) against one prompt at a time (before), same process.

The same prompts (the bundled test prompts, then Dana's prepared sample instructions, like
evaluate's test + val prompts), the same model (SmolLM2-135M-Instruct with a LoRA on every
projection, as trained by the CPU preset), evaluate's decoding (served sampling with per-row
seeds; --decoding greedy for the old default), tuned and base passes as evaluate runs them;
then the held-out perplexity pass row by row and batched. Prints each wall time and the ratio,
and whether the batched texts equal the one-by-one texts.

    .venv/bin/python bench/eval_speed.py [--prompts 26] [--tokens 200] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=26)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ppl-rows", type=int, default=24)
    ap.add_argument("--mails", type=int, default=80, help="Dana's sample emails prepared for the prompts")
    ap.add_argument("--decoding", default="served", help="served (evaluate's default) or greedy")
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from conftest import DANA, trimmed_mbox
    from mailvoice.dataset.build import DatasetOptions
    from mailvoice.dataset.prepare import prepare
    from mailvoice.evaluate.generate import GenOptions, generate, reply_perplexity
    from mailvoice.models import ensure_preset
    from mailvoice.workspace import read_jsonl

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        prepare(sources=[str(trimmed_mbox(Path(tmp) / "dana.mbox", args.mails))], out_dir=Path(tmp) / "data",
                user_emails=[DANA], opts=DatasetOptions(min_emails=20), notice=lambda m: None)
        rows = read_jsonl(Path(tmp) / "data" / "val_chat.jsonl") + read_jsonl(Path(tmp) / "data" / "train_chat.jsonl")
    prompts = [p["prompt"] for p in json.loads((ROOT / "data-samples" / "test-prompts.json").read_text())]
    prompts = (prompts + [r["messages"][1]["content"] for r in rows])[: args.prompts]
    ppl_rows = rows[: args.ppl_rows]
    print(f"prepared {len(rows)} rows in {time.perf_counter() - t0:.0f}s", flush=True)

    base = str(ensure_preset("smollm2-135m"))
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, cfg).eval()
    opts = GenOptions.decoding(args.decoding, args.tokens)

    def gen_side(batch, side):
        t = time.perf_counter()
        out = generate(model, tok, prompts, opts, use_adapter=side, batch_size=batch)
        return time.perf_counter() - t, out

    def ppl_side(batch, side):
        t = time.perf_counter()
        v = reply_perplexity(model, tok, ppl_rows, use_adapter=side, batch_size=batch)
        return time.perf_counter() - t, v

    # A-B-B-A order (batched tuned, one-by-one tuned, one-by-one base, batched base): a load that
    # drifts linearly during the run (other jobs on a shared machine) weighs on both sides alike
    (a1, n_t), (b1, o_t), (b2, o_b), (a2, n_b) = (gen_side(args.batch, True), gen_side(1, True),
                                                  gen_side(1, False), gen_side(args.batch, False))
    t_new, t_old, new, old = a1 + a2, b1 + b2, [n_t, n_b], [o_t, o_b]
    print(f"generation batched {t_new:.1f}s, one by one {t_old:.1f}s", flush=True)
    (c1, pn_t), (d1, po_t), (d2, po_b), (c2, pn_b) = (ppl_side(8, True), ppl_side(1, True),
                                                      ppl_side(1, False), ppl_side(8, False))
    p_new, p_old, pv_new, pv_old = c1 + c2, d1 + d2, [pn_t, pn_b], [po_t, po_b]
    same = sum(a["text"] == b["text"] for s in range(2) for a, b in zip(new[s], old[s], strict=True))
    tokens = sum(g["tokens"] for s in old for g in s)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"generation: {2 * len(prompts)} emails (tuned + base), {tokens} new tokens, max {args.tokens}, {args.decoding}")
    print(f"  one by one: {t_old:.1f}s   batched ({args.batch}): {t_new:.1f}s   ratio {t_old / t_new:.1f}x")
    print(f"  identical texts: {same} of {2 * len(prompts)}")
    print(f"perplexity: {len(ppl_rows)} rows × 2 sides   row by row {p_old:.1f}s   batched (8): {p_new:.1f}s   "
          f"ratio {p_old / p_new:.1f}x   (values {pv_old[0]:.3f} vs {pv_new[0]:.3f})")
    print(f"torch passes together: {(t_old + p_old) / (t_new + p_new):.1f}x")


if __name__ == "__main__":
    main()
