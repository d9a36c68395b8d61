"""Best-of-N's cost and gain: the same EmailAI drafting requests through the gateway with
``--candidates 1`` (the baseline, same run) and ``--candidates N``, against a real llama-server
(SmolLM2-135M-Instruct Q4_1 behind the test Ollama server) and the real style scorer (the
evaluate stage's classifier, fitted on Dana's prepared sample mail vs the contrast authors).

Prints latency p50/mean per request, the ratio to N = 1, the scorer's share of it (from the
gateway's log line), and the mean P(Dana) of the drafts returned. Needs the llama.cpp tools.

    python bench/gateway_best_of.py --candidates 3 --requests 6
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=3)
    ap.add_argument("--requests", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=60, help="num_predict per draft")
    args = ap.parse_args()

    import httpx
    from conftest import DANA, trimmed_mbox
    from fakes.ollama_server import FakeOllama
    from test_gateway import ollama_draft_body, running_gateway

    from mailvoice import tools
    from mailvoice.chat import CHATML, SYSTEM_PROMPT
    from mailvoice.dataset.build import DatasetOptions
    from mailvoice.dataset.prepare import prepare
    from mailvoice.gateway import GatewayConfig, UserDirectory
    from mailvoice.gateway.compose import StyleScorer
    from mailvoice.models import cache_root, fetch_smollm2_gguf

    tc = tools.require_toolchain(binaries=("llama-server",))
    gguf = fetch_smollm2_gguf(cache_root() / "downloads" / "smollm2")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepare(sources=[str(trimmed_mbox(tmp / "dana.mbox", 150))], out_dir=tmp / "ws" / "dana" / "data",
                user_emails=[DANA], opts=DatasetOptions(min_emails=20), notice=lambda m: None)
        scorer = StyleScorer(tmp / "ws")
        scorer.reranker("dana")  # fitted once per process, as the gateway does on first use
        fake = FakeOllama(tmp / "ollama", tc.bin("llama-server"), threads=2)
        fake.start()
        fake.add_model("emailai-dana", gguf, template=CHATML.ollama_template, system=SYSTEM_PROMPT,
                       parameters={"stop": list(CHATML.stop), "repeat_penalty": 1.1, "temperature": 0.0})
        records = [{"user_id": "dana", "model": "emailai-dana", "email": DANA}]
        body = ollama_draft_body(DANA)
        logs: list[str] = []

        class Grab(logging.Handler):
            def emit(self, rec):
                logs.append(rec.getMessage())

        logging.getLogger("mailvoice.gateway").addHandler(Grab())
        logging.getLogger("mailvoice.gateway").setLevel(logging.INFO)
        rows = {}
        try:
            for n in (1, args.candidates):
                cfg = GatewayConfig(upstream=fake.url, directory=UserDirectory(records=records), candidates=n,
                                    scorer=scorer, draft_options={"num_predict": args.tokens})
                lat, texts = [], []
                logs.clear()
                with running_gateway(cfg) as url:
                    httpx.post(url + "/api/chat", json=body, timeout=600)  # warm: the model loads
                    logs.clear()
                    for _ in range(args.requests):
                        t = time.perf_counter()
                        r = httpx.post(url + "/api/chat", json=body, timeout=600)
                        lat.append(time.perf_counter() - t)
                        texts.append(json.loads(r.json()["message"]["content"])["reply"])
                score_ms = [float(m) for line in logs for m in re.findall(r"score_ms=([\d.]+)", line)]
                rows[n] = {"p50_s": statistics.median(lat), "mean_s": statistics.fmean(lat),
                           "score_ms": statistics.fmean(score_ms) if score_ms else 0.0,
                           "p_user": statistics.fmean(scorer("dana", texts))}
        finally:
            fake.stop()
    base = rows[1]
    print("| candidates | p50 s/request | mean s/request | × of N=1 | scoring ms | mean P(Dana) of the returned draft |")
    print("|---|---|---|---|---|---|")
    for n, r in rows.items():
        print(f"| {n} | {r['p50_s']:.2f} | {r['mean_s']:.2f} | {r['p50_s'] / base['p50_s']:.2f}× | {r['score_ms']:.1f} | "
              f"{r['p_user']:.3f} |")
    print(json.dumps({str(k): v for k, v in rows.items()}))


if __name__ == "__main__":
    main()
