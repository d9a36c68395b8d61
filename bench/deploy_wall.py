"""Deploy wall time and GGUF sizes, tiny model and SmolLM2-135M, against the Ollama test server.

    .venv/bin/python bench/deploy_wall.py [--models tiny,smollm2] [--quants q4_K_M,q8_0,f16] [--json out.json]

Each run is a full merged deploy (merge → GGUF → quantize → blob upload → /api/create → probe)
with a LoRA of random weights (deploy cost does not depend on what the LoRA learned; the probe
is allowed to run to its token limit here, so ``verify`` is measured but not enforced). Prints a
Markdown table for docs/deploy.md.
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
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="tiny,smollm2")
    ap.add_argument("--quants", default="q4_K_M,q8_0,f16")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from fakes.ollama_server import FakeOllama
    from test_deploy import make_random_adapter

    from mailvoice.deploy import pipeline
    from mailvoice.deploy.ollama import OllamaClient
    from mailvoice.deploy.pipeline import DeployOptions, deploy
    from mailvoice.models import build_tiny_model, ensure_preset
    from mailvoice.tools import require_toolchain
    from mailvoice.workspace import user_space

    tc = require_toolchain()
    pipeline.verify = lambda client, name, fmt, **kw: {"ok": None}  # measured below, not enforced
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for which in args.models.split(","):
            base = build_tiny_model(tmp / "tiny") if which == "tiny" else ensure_preset("smollm2-135m")
            adapter = make_random_adapter(base, tmp / f"{which}-adapter", scale=0.05)
            for quant in args.quants.split(","):
                with FakeOllama(tmp / f"ollama-{which}-{quant}", tc.bin("llama-server")) as o:
                    space = user_space(f"bench-{which}", tmp / "ws").ensure()
                    t = time.monotonic()
                    res = deploy(adapter, f"bench-{which}", space, DeployOptions(quantize=quant, ollama_url=o.url), log=lambda m: None)
                    wall = time.monotonic() - t
                    t = time.monotonic()
                    r = OllamaClient(o.url).generate(res.model, pipeline.probe_prompt(), options={"num_predict": 32, "temperature": 0})
                    first = time.monotonic() - t
                rows.append({
                    "model": which, "quant": quant, "wall_s": round(wall, 1), **res.timings,
                    "gguf_mib": round(res.gguf.stat().st_size / 2**20, 2),
                    "lora_gguf_mib": round(res.lora_gguf.stat().st_size / 2**20, 3),
                    "first_generate_s": round(first, 2), "probe_tokens": r.get("eval_count"),
                })
                print(json.dumps(rows[-1]), flush=True)
    print("\n| model | quant | deploy wall (s) | merge | convert | quantize | create | GGUF (MiB) | LoRA GGUF (MiB) | first 32-token generate (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['quant']} | {r['wall_s']} | {r.get('merge_s', '')} | {r.get('convert_s', '')} | "
              f"{r.get('quantize_s', '-')} | {r.get('create_s', '')} | {r['gguf_mib']} | {r['lora_gguf_mib']} | {r['first_generate_s']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
