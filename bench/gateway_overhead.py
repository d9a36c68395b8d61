"""Gateway overhead: latency through ``mailvoice gateway`` vs calling the upstream directly.

An upstream stub (a Starlette app under uvicorn, its own process) answers instantly in Ollama's
shapes, so what is measured is the gateway's own cost: a pass-through call (rule matching),
and an EmailAI drafting call (parse, route, rewrite, upstream call, JSON shaping), each
non-streamed, ``--concurrency`` requests in flight. Prints a Markdown table and JSON.

    python bench/gateway_overhead.py --requests 400 --concurrency 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

STUB = r'''
import json, sys
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
import uvicorn

PASS = b'{"model":"llama3.1","message":{"role":"assistant","content":"{\\"ruleName\\": \\"Invoices\\"}"},"done":true}'

async def chat(request):
    body = json.loads(await request.body())
    if body.get("model", "").startswith("emailai-"):
        return Response(json.dumps({"model": body["model"], "message": {"role": "assistant", "content": "Hi Dana,\n\nTuesday works.\n\nAna"},
                                    "done": True, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 7}),
                        media_type="application/json")
    return Response(PASS, media_type="application/json")

uvicorn.run(Starlette(routes=[Route("/api/chat", chat, methods=["POST"])]), host="127.0.0.1", port=int(sys.argv[1]),
            log_level="warning", access_log=False)
'''

GATEWAY = r'''
import sys
from mailvoice.gateway import GatewayConfig, UserDirectory, serve
recs = [{"user_id": "ana", "model": "emailai-ana", "email": "ana@acme.example"},
        {"user_id": "ben", "model": "emailai-ben", "email": "ben@acme.example"}]
serve(GatewayConfig(upstream=sys.argv[1], directory=UserDirectory(records=recs)), port=int(sys.argv[2]))
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


async def run_load(url: str, body: bytes, n: int, concurrency: int) -> list[float]:
    import httpx

    lat: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as c:
        for _ in range(concurrency):  # warm the connections
            await c.post(url + "/api/chat", content=body)
        queue = list(range(n))

        async def worker():
            while queue:
                queue.pop()
                t = time.perf_counter()
                r = await c.post(url + "/api/chat", content=body)
                lat.append((time.perf_counter() - t) * 1e3)
                assert r.status_code == 200, r.text

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="alternate direct/gateway runs, pool the samples")
    args = ap.parse_args()
    from test_gateway import RULES_BODY, ollama_draft_body

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    up_port, gw_port = free_port(), free_port()
    procs = [subprocess.Popen([sys.executable, "-c", STUB, str(up_port)], env=env)]
    procs.append(subprocess.Popen([sys.executable, "-c", GATEWAY, f"http://127.0.0.1:{up_port}", str(gw_port)], env=env))
    try:
        wait_port(up_port)
        wait_port(gw_port)
        up, gw = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{gw_port}"
        draft = json.dumps(ollama_draft_body("ana@acme.example")).encode()
        draft_direct = json.dumps({**json.loads(draft), "model": "emailai-ana"}).encode()  # same size, upstream answers as voice
        passthru = json.dumps(RULES_BODY).encode()
        import psutil

        gproc = psutil.Process(procs[1].pid)
        res: dict[str, list[float]] = {k: [] for k in ("pass_direct", "pass_gateway", "draft_direct", "draft_gateway")}
        cpu = {"pass": 0.0, "draft": 0.0}

        def gw_cpu():
            t = gproc.cpu_times()
            return t.user + t.system

        for _ in range(args.rounds):
            res["pass_direct"] += asyncio.run(run_load(up, passthru, args.requests, args.concurrency))
            c0 = gw_cpu()
            res["pass_gateway"] += asyncio.run(run_load(gw, passthru, args.requests, args.concurrency))
            cpu["pass"] += gw_cpu() - c0
            res["draft_direct"] += asyncio.run(run_load(up, draft_direct, args.requests, args.concurrency))
            c0 = gw_cpu()
            res["draft_gateway"] += asyncio.run(run_load(gw, draft, args.requests, args.concurrency))
            cpu["draft"] += gw_cpu() - c0
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    summary = {k: {"p50_ms": round(statistics.median(v), 2), "p99_ms": round(pct(v, 99), 2), "n": len(v)} for k, v in res.items()}
    for kind in ("pass", "draft"):
        d, g = summary[f"{kind}_direct"], summary[f"{kind}_gateway"]
        summary[f"{kind}_overhead"] = {"p50_ms": round(g["p50_ms"] - d["p50_ms"], 2), "p99_ms": round(g["p99_ms"] - d["p99_ms"], 2),
                                       "gateway_cpu_ms_per_request": round(cpu[kind] * 1e3 / ((args.requests + args.concurrency) * args.rounds), 3)}
    print(f"| call ({args.concurrency} concurrent, {args.requests}×{args.rounds} requests) | direct p50 | gateway p50 | "
          "overhead p50 | gateway/direct p50 | direct p99 | gateway p99 | overhead p99 | gateway CPU ms/req |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, label in (("pass", "pass-through (rule matching)"), ("draft", "drafting (parse+route+rewrite+shape)")):
        d, g, o = summary[f"{kind}_direct"], summary[f"{kind}_gateway"], summary[f"{kind}_overhead"]
        print(f"| {label} | {d['p50_ms']} | {g['p50_ms']} | {o['p50_ms']} | {g['p50_ms'] / d['p50_ms']:.2f}× | "
              f"{d['p99_ms']} | {g['p99_ms']} | {o['p99_ms']} | "
              f"{o['gateway_cpu_ms_per_request']} |")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
