"""Useful tokens/s: our trainer against the original EmailAI recipe, same model, data and steps.

The original recipe padded every row to 2048 tokens and put the loss on the prompt too; ours is
padding-free with the loss on the reply only. "Useful" tokens are the real (non-pad) tokens a
step processes. Both run here in one process, one after the other, and the ratio is printed.

    .venv/bin/python bench/train_throughput.py [--model smollm2-135m] [--steps 4] [--rows 48]

The original's batch 4 × 2048 runs out of memory on a 24 GB CPU machine in the first forward
(FACTS.md), so it runs as 4 × 1 with gradient accumulation (the same FLOPs per optimizer step).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--data", default=None, help="dataset folder with train_chat.jsonl (default: the demo sample)")
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from mailvoice.models import resolve_base_model
    from mailvoice.train.run import TokenizeStats, load_tokenizer, tokenize_rows
    from mailvoice.workspace import read_jsonl

    data_dir = Path(args.data) if args.data else _demo_data()
    base = resolve_base_model(args.model)
    tok, fmt = load_tokenizer(base)
    rows = read_jsonl(data_dir / "train_chat.jsonl")[: args.rows]
    ours = tokenize_rows(tok, fmt, rows, 2048, TokenizeStats())
    batch = 4
    torch.manual_seed(0)

    def fresh():
        m = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        m.config.use_cache = False
        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        m = get_peft_model(m, lora)
        return m, torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)

    # ours: padding-free, one packed row per step, loss on the reply only
    model, opt = fresh()
    t0, useful = time.time(), 0
    for step in range(args.steps):
        chunk = ours[step * batch:(step + 1) * batch]
        ids = torch.tensor([sum((r["input_ids"] for r in chunk), [])])
        labels = torch.tensor([sum((r["labels"] for r in chunk), [])])
        pos = torch.tensor([sum((list(range(len(r["input_ids"]))) for r in chunk), [])])
        loss = model(input_ids=ids, labels=labels, position_ids=pos).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        useful += ids.numel()
    ours_s = time.time() - t0
    ours_rss = rss_mb()
    del model, opt

    # original: every row padded to 2048, loss on every real token (prompt too), 4 × 1 accumulation
    model, opt = fresh()
    pad = tok.pad_token_id
    t0, useful_orig, total_orig = time.time(), 0, 0
    for step in range(args.steps):
        for r in ours[step * batch:(step + 1) * batch]:
            n = len(r["input_ids"])
            ids = torch.tensor([r["input_ids"] + [pad] * (2048 - n)])
            att = torch.tensor([[1] * n + [0] * (2048 - n)])
            labels = ids.clone()
            labels[att == 0] = -100
            (model(input_ids=ids, attention_mask=att, labels=labels).loss / batch).backward()
            useful_orig += n
            total_orig += 2048
        opt.step()
        opt.zero_grad()
    orig_s = time.time() - t0
    orig_rss = rss_mb()

    res = {
        "model": args.model,
        "steps": args.steps,
        "rows_per_step": batch,
        "ours_useful_tok_per_s": round(useful / ours_s, 1),
        "original_useful_tok_per_s": round(useful_orig / orig_s, 1),
        "ratio": round((useful / ours_s) / (useful_orig / orig_s), 2),
        "original_useful_fraction": round(useful_orig / total_orig, 4),
        "ours_useful_fraction": 1.0,
        "peak_rss_mb_after_ours": round(ours_rss, 1),
        "peak_rss_mb_after_original": round(orig_rss, 1),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(res, indent=2))


def _demo_data() -> Path:
    """Prepare the bundled sample mailbox into a temp folder."""
    import tempfile

    from mailvoice.dataset.build import DatasetOptions
    from mailvoice.dataset.prepare import prepare

    root = Path(__file__).resolve().parents[1]
    out = Path(tempfile.mkdtemp(prefix="mv-bench-")) / "data"
    prepare(sources=[str(root / "data-samples" / "mailboxes" / "dana-sent.mbox")], out_dir=out,
            user_emails=["dana@willowcreek-design.example"], opts=DatasetOptions(min_emails=20), notice=lambda m: None)
    return out


if __name__ == "__main__":
    main()
