"""Gmail fetch for the EmailAI source: one message at a time vs a bounded window of concurrent fetches.

Usage:  PYTHONPATH=src python bench/emailai_fetch.py [--messages 300] [--latency 0.03] [--concurrency 8]

Against the project's fake Gmail API (tests/fakes/gmail_server.py), each ``messages.get`` held for
``--latency`` seconds (a round trip to Google is tens of milliseconds; the fake itself is local),
with Gmail's per-user concurrency limit (429 "Too many concurrent requests for user") set above
the window. Both runs list ``in:sent`` and read every message through
``mailvoice.sources.emailai_db.fetch_in_order``; the ratio is sequential time / concurrent time in the
same run, on the same machine.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from fakes.gmail_server import FakeGoogle  # noqa: E402

from mailvoice.sources.emailai_db import fetch_in_order  # noqa: E402
from mailvoice.sources.gmail import GmailClient  # noqa: E402


def _mail(i: int) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "Ana <ana@example.com>", "bob@example.com", f"Note {i}"
    m.set_content(f"Hi Bob,\n\nnote number {i}.\n\nAna\n")
    return m.as_bytes()


def run(n: int, latency: float, concurrency: int) -> float:
    with FakeGoogle(max_concurrent=max(concurrency, 1) + 2, get_delay=latency) as g:
        mb = g.add_mailbox("ana@example.com", access_token="at")
        for i in range(n):
            mb.add_message(_mail(i))
        with GmailClient("at", api_base=g.api_base, token_url=g.token_url) as c:
            t = time.perf_counter()
            got = sum(1 for _, raw in fetch_in_order(c, c.list_messages("in:sent"), concurrency) if raw)
            dt = time.perf_counter() - t
        assert got == n, (got, n)
        return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--latency", type=float, default=0.03)
    ap.add_argument("--concurrency", type=int, default=8)
    a = ap.parse_args()
    seq = run(a.messages, a.latency, 1)
    par = run(a.messages, a.latency, a.concurrency)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"{a.messages} messages, {a.latency * 1e3:.0f} ms per get")
    print(f"one at a time:      {seq:.2f} s ({a.messages / seq:.0f} msg/s)")
    print(f"{a.concurrency} in flight:        {par:.2f} s ({a.messages / par:.0f} msg/s)")
    print(f"ratio: {seq / par:.1f}x")


if __name__ == "__main__":
    main()
