"""The review page: one private, self-contained HTML file to read before training.

``mailvoice review DIR`` reads a prepared dataset folder (see ``build.py``) and writes
``DIR/review.html``: the manifest's numbers, a histogram of reply lengths, and a deterministic
sample of training examples with the PII placeholders highlighted and the parts the cleaner
removed (quotes, signatures, forwards, …) shown collapsed beneath, with the cleaner's reasons.

The removed parts are recomputed by re-running the cleaner on the matching ``records.jsonl``
entry (example id = ``sha256(message_id)[:16]``, as ``build.py`` does), with the signatures learned
from the same records, so the page shows exactly what training will not see.

The page is private (it is the user's mail): written 0600, says so at the top, no JavaScript,
no external URL of any kind, and a Content-Security-Policy that forbids every network load.
Every piece of email text goes through ``html.escape``.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..artifacts import CLEAN_PROFILE, MANIFEST, RECORDS
from ..errors import MailvoiceError
from ..sources.jsonl import read_records
from ..workspace import write_text
from .clean_profile import clean_record, learn_profile, read_profile

DEFAULT_NAME = "review.html"

PLACEHOLDERS = {
    "EMAIL": "an email address",
    "PHONE": "a phone number",
    "CARD": "a payment card number",
    "SSN": "a social security number",
    "IBAN": "a bank account number (IBAN)",
    "BANK": "a bank routing or account number",
    "DOB": "a date of birth",
    "IP": "an IP address",
    "SECRET": "a password, token or key",
    "URL": "a web link",
}
PLACEHOLDER_RE = re.compile(r"<(" + "|".join(PLACEHOLDERS) + r")>")

ZONE_LABELS = {
    "quote": "Quoted earlier message",
    "forward": "Forwarded message",
    "signature": "Signature",
    "device_footer": "“Sent from my phone” footer",
    "disclaimer": "Legal disclaimer",
    "html": "HTML-only content",
}

DROP_LABELS = {
    "too_short": "too short",
    "too_long": "too long",
    "duplicate_text": "same text as another email",
    "one_liner_cap": "one-liners over the cap",
}

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src 'none'; "
    "connect-src 'none'; script-src 'none'; form-action 'none'; base-uri 'none'; frame-src 'none'"
)


@dataclass(frozen=True)
class RemovedZone:
    kind: str
    reason: str
    text: str


@dataclass(frozen=True)
class SampleCard:
    id: str
    split: str
    date: str | None
    instruction: str
    input: str
    output: str
    zones: tuple[RemovedZone, ...] | None  # None: no matching entry in records.jsonl


@dataclass
class ReviewPage:
    html: str
    metadata: dict
    samples: list[SampleCard] = field(default_factory=list)
    total_examples: int = 0
    records_found: bool = False

    @property
    def summary(self) -> list[tuple[str, str]]:
        return summary_rows(self.metadata)


# ------------------------------------------------------------------------------------------- loading


def _load_manifest(dataset_dir: Path) -> dict:
    path = dataset_dir / MANIFEST
    if not path.is_file():
        raise MailvoiceError(f"no {MANIFEST} in {dataset_dir} (run prepare first)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise MailvoiceError(f"{path} is not a readable dataset manifest (run prepare again)") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("metadata"), dict):
        raise MailvoiceError(f"{path} has no metadata (run prepare again)")
    if not isinstance(manifest.get("records"), list):
        manifest["records"] = []
    return manifest


def example_id(message_id: str) -> str:
    """The id ``build.py`` gives the example made from a record."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:16]


def _removed_zones(dataset_dir: Path, wanted: set[str]) -> dict[str, tuple[RemovedZone, ...]] | None:
    """Re-run the cleaner on the records behind ``wanted`` ids; None when records.jsonl is absent."""
    path = dataset_dir / RECORDS
    if not path.is_file():
        return None
    records = list(read_records(path))
    # the profile prepare cleaned with (learned and stored signatures); an older dataset without
    # one gets the learned part again from the same records
    prof = dataset_dir / CLEAN_PROFILE
    profile = read_profile(prof) if prof.is_file() else learn_profile(records)
    out: dict[str, tuple[RemovedZone, ...]] = {}
    for rec in records:
        eid = example_id(rec.message_id)
        if eid in wanted and eid not in out:
            ex = clean_record(rec, profile)
            out[eid] = tuple(RemovedZone(z.kind, z.reason, z.text) for z in ex.removed)
    return out


def _pick(records: list[dict], k: int, seed: int) -> list[dict]:
    """A deterministic sample, shown oldest first."""
    ordered = sorted(records, key=lambda r: str(r.get("id", "")))
    chosen = random.Random(seed).sample(ordered, min(max(k, 0), len(ordered)))
    return sorted(chosen, key=lambda r: (str(r.get("date") or ""), str(r.get("id", ""))))


# ------------------------------------------------------------------------------------------- API


def build_review(dataset_dir: Path, *, sample: int = 30, seed: int = 0) -> ReviewPage:
    dataset_dir = Path(dataset_dir)
    manifest = _load_manifest(dataset_dir)
    meta = manifest["metadata"]
    records = [r for r in manifest["records"] if isinstance(r, dict)]
    picked = _pick(records, sample, seed)
    zones = _removed_zones(dataset_dir, {str(r.get("id", "")) for r in picked})
    cards = [
        SampleCard(
            id=str(r.get("id", "")),
            split=str(r.get("split", "")),
            date=r.get("date"),
            instruction=str(r.get("instruction") or ""),
            input=str(r.get("input") or ""),
            output=str(r.get("output") or ""),
            zones=None if zones is None else zones.get(str(r.get("id", ""))),
        )
        for r in picked
    ]
    words = [len(str(r.get("output") or "").split()) for r in records]
    page = render_page(meta, cards, words, records_found=zones is not None)
    return ReviewPage(page, meta, cards, total_examples=len(records), records_found=zones is not None)


def write_review(dataset_dir: Path, out: Path | None = None, *, sample: int = 30, seed: int = 0) -> Path:
    """Write the page (atomically, 0600) to ``out`` or ``DIR/review.html``; returns the path."""
    dataset_dir = Path(dataset_dir)
    page = build_review(dataset_dir, sample=sample, seed=seed)
    return write_text(Path(out) if out else dataset_dir / DEFAULT_NAME, page.html)


# ------------------------------------------------------------------------------------------- numbers


def _date(iso: str | None) -> str:
    """'2024-03-01T10:00:00+00:00' → '2024-03-01 10:00 UTC' (the records are in UTC)."""
    if not iso:
        return "no date"
    try:
        d = datetime.fromisoformat(str(iso))
        return (d.astimezone(UTC) if d.tzinfo else d).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(iso)


def _n(v) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v):,}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _pairs(d: dict | None, labels: dict | None = None) -> str:
    if not d:
        return "none"
    labels = labels or {}
    return ", ".join(f"{labels.get(k, k)} {_n(v)}" for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


def _stats_line(d: dict | None, unit: str) -> str:
    if not d or "median" not in d:
        return "not computed"
    return (
        f"median {_n(d['median'])} {unit}, mean {_n(d.get('mean', 0))}, 95% under {_n(d.get('p95', 0))}, "
        f"range {_n(d.get('min', 0))}–{_n(d.get('max', 0))}"
    )


def summary_rows(meta: dict) -> list[tuple[str, str]]:
    """The terminal summary: counts and reasons only, never email text."""
    c = meta.get("counts", {})
    src = meta.get("source_stats") or {}
    split = meta.get("split") or {}
    rows = []
    if src:
        rows.append(("messages read", f"{_n(src.get('seen', 0))} seen, {_n(src.get('kept', 0))} written by you"))
    rows.append(("cleaned records", _n(c.get("records", 0))))
    rows.append(
        ("training examples", f"{_n(c.get('examples', 0))} (train {_n(c.get('train', 0))}, val {_n(c.get('val', 0))})")
    )
    if split:
        rows.append(("threads", f"train {_n(split.get('train_threads', 0))}, val {_n(split.get('val_threads', 0))}"))
    dr = meta.get("date_range")
    rows.append(("dates", f"{_date(dr[0])} → {_date(dr[1])}" if dr else "unknown"))
    drops = {**(src.get("dropped") or {}), **(meta.get("dropped") or {})}
    rows.append(("dropped", _pairs(drops, DROP_LABELS)))
    rows.append(("removed parts", _pairs(meta.get("removed_zones"))))
    rows.append(("PII replaced", _pairs(meta.get("pii"))))
    rows.append(("reply length", _stats_line(meta.get("output_words"), "words")))
    if meta.get("tokens"):
        rows.append(("tokens per example", _stats_line(meta["tokens"], "tokens")))
    return rows


# ------------------------------------------------------------------------------------------- HTML

e = html.escape  # quote=True: safe in text and in attribute values


def highlight(text: str) -> str:
    """Escape ``text`` and wrap each PII placeholder in ``<mark class="pii">``."""
    out, pos = [], 0
    for m in PLACEHOLDER_RE.finditer(text):
        out.append(e(text[pos : m.start()]))
        kind = m.group(1)
        out.append(f'<mark class="pii" title="{e(PLACEHOLDERS[kind])} was replaced">{e(m.group(0))}</mark>')
        pos = m.end()
    out.append(e(text[pos:]))
    return "".join(out)


def _nice_width(max_value: int, max_bins: int = 24) -> int:
    for w in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if math.ceil((max_value + 1) / w) <= max_bins:
            return w
    return math.ceil((max_value + 1) / max_bins)


def histogram_svg(words: Sequence[int]) -> str:
    if not words:
        return '<p class="muted">No examples, so no histogram.</p>'
    w = _nice_width(max(words))
    nbins = math.ceil((max(words) + 1) / w)
    counts = [0] * nbins
    for v in words:
        counts[min(v // w, nbins - 1)] += 1
    top = max(counts)
    W, H, left, bottom, right, topm = 760, 260, 48, 40, 12, 14
    pw, ph = W - left - right, H - bottom - topm
    bw = pw / nbins
    parts = [
        f'<svg class="hist" viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="Reply lengths in words">',
        f'<line class="axis" x1="{left}" y1="{topm + ph}" x2="{W - right}" y2="{topm + ph}"/>',
        f'<line class="axis" x1="{left}" y1="{topm}" x2="{left}" y2="{topm + ph}"/>',
        f'<text class="tick" x="{left - 6}" y="{topm + ph}" text-anchor="end" dominant-baseline="middle">0</text>',
        f'<text class="tick" x="{left - 6}" y="{topm + 4}" text-anchor="end" dominant-baseline="middle">{top}</text>',
    ]
    label_every = max(1, math.ceil(nbins / 8))
    for i, n in enumerate(counts):
        lo, hi = i * w, i * w + w - 1
        rng = f"{lo}" if w == 1 else f"{lo}–{hi}"
        h = 0 if top == 0 else ph * n / top
        x = left + i * bw
        parts.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{topm + ph - h:.1f}" width="{max(bw - 2, 1):.1f}" '
            f'height="{h:.1f}" data-count="{n}"><title>{rng} words: {n} '
            f"{'reply' if n == 1 else 'replies'}</title></rect>"
        )
        if i % label_every == 0:
            parts.append(
                f'<text class="tick" x="{x + bw / 2:.1f}" y="{topm + ph + 16}" text-anchor="middle">{lo}</text>'
            )
    parts.append(
        f'<text class="label" x="{left + pw / 2:.1f}" y="{H - 4}" text-anchor="middle">words in the reply</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[tuple[str, str]], cls: str = "stats") -> str:
    body = "".join(f'<tr><th scope="row">{e(k)}</th><td>{e(v)}</td></tr>' for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def _kv_table(d: dict | None, labels: dict | None, empty: str, caption: str, describe: dict | None = None) -> str:
    if not d:
        return (
            f'<table class="kv empty"><caption>{e(caption)}</caption><tr><td class="muted">{e(empty)}</td></tr></table>'
        )
    labels = labels or {}
    rows = "".join(
        f'<tr><th scope="row">{e(str(labels.get(k, k)))}'
        + (f'<br><span class="muted desc">{e(describe[k])}</span>' if describe and k in describe else "")
        + f'</th><td class="num">{e(_n(v))}</td></tr>'
        for k, v in sorted(d.items(), key=lambda kv: (-kv[1] if isinstance(kv[1], (int, float)) else 0, kv[0]))
    )
    return f'<table class="kv"><caption>{e(caption)}</caption>{rows}</table>'


def _big(label: str, value, key: str) -> str:
    return f'<div class="big" data-stat="{e(key)}"><span class="value">{e(_n(value))}</span><span class="what">{e(label)}</span></div>'


def _card(i: int, c: SampleCard) -> str:
    split = "held out (validation)" if c.split == "val" else "training"
    head = (
        f'<header><span class="idx">#{i}</span> <span class="badge {e(c.split)}">{e(split)}</span> '
        f'<span class="date">{e(_date(c.date))}</span> <code class="id">{e(c.id)}</code></header>'
    )
    instr = f'<h3>What the model is asked</h3><p class="instruction">{highlight(c.instruction)}</p>'
    body = f'<h3>What the model learns to write</h3><pre class="kept">{highlight(c.output)}</pre>'
    ctx = ""
    if c.input:
        ctx = (
            '<details class="context"><summary>The message you replied to (given to the model as context)</summary>'
            f"<pre>{highlight(c.input)}</pre></details>"
        )
    if c.zones is None:
        zones = '<p class="muted">The original email was not found in records.jsonl, so the removed parts cannot be shown.</p>'
    elif not c.zones:
        zones = '<p class="muted nothing-removed">Nothing was removed from this email.</p>'
    else:
        zones = (
            '<div class="zones"><h4>Removed before training</h4>'
            + "".join(
                f'<details class="zone {e(z.kind)}" data-kind="{e(z.kind)}"><summary>'
                f'<span class="zkind">{e(ZONE_LABELS.get(z.kind, z.kind))}</span> '
                f'<span class="reason">— {e(z.reason)}</span></summary><pre>{e(z.text)}</pre></details>'
                for z in c.zones
            )
            + "</div>"
        )
    return f'<article class="sample" id="ex-{e(c.id)}">{head}{instr}{body}{ctx}{zones}</article>'


STYLE = """
:root{--ink:#1d2330;--muted:#5b6473;--line:#d9dde5;--bg:#f6f7f9;--card:#fff;--accent:#2f5fd0;
--warn-bg:#fff4d6;--warn:#7a5200;--pii:#ffe28a;--val:#7b3fb8;--train:#1f7a4d}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:980px;margin:0 auto;padding:0 20px 60px}
.private{background:var(--warn-bg);color:var(--warn);border-bottom:2px solid #e8c766;padding:12px 20px;
text-align:center;font-weight:600}
h1{font-size:1.8rem;margin:28px 0 4px}
h2{font-size:1.3rem;margin:36px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:.95rem;margin:12px 0 4px;color:var(--muted);font-weight:600}
h4{font-size:.9rem;margin:14px 0 4px;color:var(--muted);font-weight:600}
.muted{color:var(--muted)}
.lede{color:var(--muted);margin:0 0 8px}
.bigs{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.big{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px;min-width:140px;flex:1}
.big .value{display:block;font-size:1.7rem;font-weight:700}
.big .what{color:var(--muted);font-size:.9rem}
table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:8px}
table.stats{width:100%}
th,td{padding:6px 12px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600}
table.stats th{width:34%}
.desc{font-weight:400;font-size:.85rem}
td.num{text-align:right;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:6px 0;color:var(--ink)}
.tables{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:16px;margin-top:16px}
.tables table{width:100%}
.hist{background:var(--card);border:1px solid var(--line);border-radius:10px}
.hist .bar{fill:var(--accent)}
.hist .axis{stroke:#8a93a3;stroke-width:1}
.hist .tick{font-size:12px;fill:var(--muted)}
.hist .label{font-size:13px;fill:var(--ink)}
mark.pii,mark.pii-key{background:var(--pii);color:#4a3500;border-radius:4px;padding:0 3px;font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:.9rem;margin:8px 0}
.sample{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 18px;margin:16px 0}
.sample header{display:flex;flex-wrap:wrap;gap:8px;align-items:center;font-size:.9rem;color:var(--muted)}
.idx{font-weight:700;color:var(--ink)}
.badge{border-radius:999px;padding:1px 10px;font-size:.8rem;font-weight:600;color:#fff;background:var(--train)}
.badge.val{background:var(--val)}
code.id{font-size:.8rem;margin-left:auto}
.instruction{margin:0;white-space:pre-wrap;font-weight:600}
pre{white-space:pre-wrap;word-wrap:break-word;font:inherit;margin:0}
pre.kept{background:#f3f7ff;border-left:4px solid var(--accent);padding:10px 12px;border-radius:4px}
details{margin:6px 0;border:1px solid var(--line);border-radius:6px;background:#fafbfc}
details>summary{cursor:pointer;padding:6px 10px;font-size:.92rem}
details>pre{padding:8px 12px;border-top:1px solid var(--line);color:#3b4250;font-size:.92rem}
details.zone{border-left:4px solid #c0392b}
details.zone.signature,details.zone.device_footer{border-left-color:#d68910}
details.zone.forward{border-left-color:#7b3fb8}
.zkind{font-weight:600}
.reason{color:var(--muted)}
footer{margin-top:40px;color:var(--muted);font-size:.85rem}
"""


def render_page(meta: dict, cards: list[SampleCard], words: Sequence[int], *, records_found: bool = True) -> str:
    c = meta.get("counts", {})
    src = meta.get("source_stats") or {}
    split = meta.get("split") or {}
    dr = meta.get("date_range")
    bigs = "".join(
        [
            _big("messages written by you", src.get("kept", c.get("records", 0)), "kept") if src else "",
            _big("cleaned records", c.get("records", 0), "records"),
            _big("training examples", c.get("examples", 0), "examples"),
            _big("for training", c.get("train", 0), "train"),
            _big("held out to check the model", c.get("val", 0), "val"),
        ]
    )
    overview = [
        ("Dates covered", f"{_date(dr[0])} → {_date(dr[1])}" if dr else "unknown"),
        (
            "Conversations (threads)",
            f"{_n(split.get('train_threads', 0))} in training, {_n(split.get('val_threads', 0))} held out"
            if split
            else "unknown",
        ),
        (
            "How it was split",
            f"{split.get('method', 'unknown')}, {_n(split.get('val_fraction', 0))} held out, seed {split.get('seed', '')}"
            if split
            else "unknown",
        ),
        ("Reply length", _stats_line(meta.get("output_words"), "words")),
        (
            "Tokens per example",
            _stats_line(meta["tokens"], "tokens")
            + (f" ({meta['tokens'].get('tokenizer')})" if meta["tokens"].get("tokenizer") else "")
            if meta.get("tokens")
            else "not computed (prepare ran without a tokenizer)",
        ),
    ]
    if src:
        overview.insert(0, ("Messages read", f"{_n(src.get('seen', 0))} read, {_n(src.get('kept', 0))} written by you"))
    if meta.get("sources"):
        overview.append(("Sources", ", ".join(str(s) for s in meta["sources"])))
    overview.append(("Prepared", f"{meta.get('created', 'unknown')} by {meta.get('tool', 'mailvoice')}"))
    drops = {**(src.get("dropped") or {}), **(meta.get("dropped") or {})}
    tables = (
        '<div class="tables">'
        + _kv_table(drops, DROP_LABELS, "Nothing was dropped.", "Emails left out, by reason")
        + _kv_table(meta.get("removed_zones"), ZONE_LABELS, "Nothing was removed.", "Parts removed from emails")
        + _kv_table(meta.get("pii"), None, "No personal data was found.", "Personal data replaced", PLACEHOLDERS)
        + "</div>"
    )
    legend = "".join(f'<span><mark class="pii-key">&lt;{k}&gt;</mark> {e(v)}</span>' for k, v in PLACEHOLDERS.items())
    wstats = meta.get("output_words") or {}
    hist_caption = (
        f"Each bar counts the replies of that length. Half are under {_n(wstats['median'])} words; "
        f"95% are under {_n(wstats.get('p95', 0))}."
        if "median" in wstats
        else "Each bar counts the replies of that length."
    )
    total = c.get("examples", len(words))
    samples_intro = (
        f"{len(cards)} of the {_n(total)} examples, picked at random (the same ones each time). "
        "The highlighted text is the email exactly as the model will learn it; personal data has been "
        "replaced by a marker. Click a grey box to see what was cut out of the email and why."
    )
    if not records_found:
        samples_intro += " (records.jsonl is missing from this folder, so the removed parts cannot be shown.)"
    cards_html = "".join(_card(i, card) for i, card in enumerate(cards, 1)) or '<p class="muted">No examples.</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex,nofollow">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<title>mailvoice review: private, contains your email</title>"
        f"<style>{STYLE}</style></head><body>"
        '<div class="private" id="private-notice" role="note">Private: this page contains your own email, '
        "including parts that will not be trained on. Do not share it or upload it anywhere.</div>"
        "<main>"
        "<h1>Review your training data</h1>"
        '<p class="lede">Read this before training. It shows what mailvoice kept from your sent mail, what it '
        "left out, and a sample of the examples your model will learn from.</p>"
        f'<section id="summary"><h2>Summary</h2><div class="bigs">{bigs}</div>'
        f"{_table(overview)}{tables}</section>"
        f'<section id="lengths"><h2>How long your replies are</h2><p class="lede">{e(hist_caption)}</p>'
        f"{histogram_svg(words)}</section>"
        f'<section id="samples"><h2>Sample of examples</h2><p class="lede">{e(samples_intro)}</p>'
        f'<div class="legend">{legend}</div>{cards_html}</section>'
        "<footer>Written by mailvoice review. This file is self-contained and loads nothing from the network.</footer>"
        "</main></body></html>\n"
    )
