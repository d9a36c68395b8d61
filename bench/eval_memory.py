"""Peak memory of evaluate's held-out perplexity pass, three ways, each in its own process (peak
RSS is per process) on the same rows: SmolLM2-135M (49,152-token vocabulary) with a LoRA,
``--rows`` held-out rows of a long thread (``--context`` words of quoted email, a ``--reply``
word reply), ``--batch`` rows at a time as evaluate does.

- before: the LM head over whole sequences, rows as long as they come (evaluate until 2026-12-07;
  the voice benchmark was killed for memory at 15 GB on real threads);
- head: the head at the scored reply positions only (``generate.selected_logits``): the same
  perplexity, printed to show it;
- now: that, with rows cut as training cuts them (``--max-len``, the CPU preset's 512: quoted
  context goes first), as evaluate runs now.

    .venv/bin/python bench/eval_memory.py [--rows 8] [--batch 8] [--context 1800] [--reply 150] [--max-len 512]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def side(args) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mailvoice.evaluate import generate
    from mailvoice.models import ensure_preset

    path = str(ensure_preset("smollm2-135m"))
    tok = AutoTokenizer.from_pretrained(path)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32),
                           LoraConfig(r=16, target_modules=["q_proj", "v_proj"])).eval()
    words = "the quarterly numbers look fine but the shipping dates moved again so please check".split()
    text = lambda n, i: " ".join(words[(k + i) % len(words)] for k in range(n))  # noqa: E731
    rows = [{"messages": [{"role": "system", "content": "Write an email."},
                          {"role": "user", "content": "Write a reply.\n\nThe email you are replying to:\n" + text(args.context, i)},
                          {"role": "assistant", "content": text(args.reply, i + 3)}]} for i in range(args.rows)]
    if args.side == "before":  # the full head, as evaluate ran it until 2026-12-07
        generate.selected_logits = lambda m, ids, mask, keep: m(input_ids=ids, attention_mask=mask).logits[keep]
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ppl = generate.reply_perplexity(model, tok, rows, batch_size=args.batch,
                                    max_len=args.max_len if args.side == "now" else 10**9)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"side": args.side, "peak_mib": peak / 1024, "model_mib": base_rss / 1024, "ppl": ppl}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--context", type=int, default=1800, help="words of quoted email in each prompt")
    ap.add_argument("--reply", type=int, default=150, help="words in each reply")
    ap.add_argument("--max-len", type=int, default=512, help="the training row length (CPU preset: 512)")
    ap.add_argument("--side", choices=["before", "head", "now"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        return side(args)
    out = {}
    for s in ("before", "head", "now"):
        cmd = [sys.executable, __file__, "--side", s] + [f"--{k.replace('_', '-')}={getattr(args, k)}"
                                                        for k in ("rows", "batch", "context", "reply", "max_len")]
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[s] = json.loads(r.stdout.strip().splitlines()[-1])
    b, h, n = out["before"], out["head"], out["now"]
    print(f"{args.rows} rows × ~{args.context} + {args.reply} words, batches of {args.batch}; "
          f"model loaded: {n['model_mib']:.0f} MiB")
    for name, o in (("before (whole head, uncut)", b), ("head at reply positions, uncut", h),
                    (f"now (reply positions, rows cut to {args.max_len} tokens)", n)):
        print(f"  {name}: peak {o['peak_mib']:.0f} MiB ({b['peak_mib'] / o['peak_mib']:.1f}× less than before), "
              f"perplexity {o['ppl']:.4f}")

if __name__ == "__main__":
    main()
