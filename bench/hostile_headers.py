"""What a header bomb costs: the stdlib parser vs mailvoice's caps (issue 15, item 4).

A Content-Type with many parameters, or a Subject of many encoded words, is superlinear in the
stdlib header parser (``policy.default``). mailvoice checks the header block's bytes first
(``sources.parse.header_problem``) and skips such a message with a reason. For each size this
prints the stdlib's time to parse the message and find its body, mailvoice's time to refuse it,
and the ratio, measured in the same run.

    PYTHONPATH=src python bench/hostile_headers.py [--kb 40,80,144]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import time
from email import policy
from email.feedparser import BytesFeedParser

from mailvoice.sources.parse import BadMessage, parse_bytes


def content_type_bomb(kb: int) -> bytes:
    params = "".join(f'; p{i}="v{i}"' for i in range(kb * 1024 // 13))
    return (f"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain{params}\r\n\r\nhello\r\n").encode()


def subject_bomb(kb: int) -> bytes:
    words = " ".join(f"=?utf-8?q?w{i}?=" for i in range(kb * 1024 // 15))
    return f"From: a@example.com\r\nSubject: {words}\r\n\r\nhello\r\n".encode()


def stdlib(raw: bytes) -> float:
    t = time.perf_counter()
    p = BytesFeedParser(policy=policy.default)
    p.feed(raw)
    msg = p.close()
    msg.get_body()
    str(msg["subject"])
    return time.perf_counter() - t


def capped(raw: bytes) -> tuple[float, str]:
    t = time.perf_counter()
    try:
        parse_bytes(raw)
        reason = "parsed"
    except BadMessage as e:
        reason = e.reason
    return time.perf_counter() - t, reason


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", default="40,80")
    args = ap.parse_args()
    print(f"{_dt.date.today()} {platform.node()} {platform.processor() or platform.machine()} Python {platform.python_version()}")
    print(f"{'message':<22}{'size':>8}{'stdlib s':>10}{'capped ms':>11}{'ratio':>10}  reason")
    for kb in (int(x) for x in args.kb.split(",")):
        for name, make in (("content-type params", content_type_bomb), ("subject words", subject_bomb)):
            raw = make(kb)
            s = stdlib(raw)
            c, reason = capped(raw)
            print(f"{name:<22}{len(raw) // 1024:>6}KB{s:>10.2f}{c * 1000:>11.2f}{s / c:>10.0f}  {reason}")


if __name__ == "__main__":
    main()
