"""Score mailvoice.clean against the shared cleaning benchmark kit, side by side with baselines.

Usage:  pip install -e ".[bench]"   # the baselines below and rapidfuzz
        PYTHONPATH=src python bench/cleaning_score.py [--json OUT.json] [--limit N]

The kit lives in ``<repo>/../shared/benchmarks/cleaning`` (override with ``MAILVOICE_SHARED`` pointing
at the ``shared`` folder). Scoring follows the kit's README.md and each suite's PROVENANCE.md:
W-normalisation, exact match and normalised edit similarity (NES), forge line-level P/R/F1, etc.
Because the suites disagree on whether a sign-off ("Thanks,\\nKim") is author text, each suite is also
reported on a *sign-off-aware* view where sign-off lines are neutral (see docs/cleaning.md).

Suite ``spamassassin-office`` is not in the kit: it ships with the repo in
``bench/cleaning/spamassassin-office`` (real office mail, ``#sig#`` / ``#quote#`` lines; its PROVENANCE.md).

Baselines: mail-parser-reply (``EmailReplyParser(languages=…).parse_reply``; given the record's
language hint where the suite has one, otherwise all its languages) and email-reply-parser
(``EmailReplyParser.parse_reply``). For HTML inputs the baselines get the HTML converted with
``mailvoice.clean.html_to_text`` (they are plain-text libraries).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import email
import email.policy
import json
import os
import platform
import re
import sys
import time
from difflib import SequenceMatcher
from pathlib import Path
from typing import Callable

from rapidfuzz.distance import Levenshtein

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mailvoice.clean import extract_author_text, html_to_text  # noqa: E402


def kit_dir() -> Path:
    shared = os.environ.get("MAILVOICE_SHARED")
    base = Path(shared) if shared else REPO.parent / "shared"
    return base / "benchmarks" / "cleaning"


# ---------------------------------------------------------------- normalisation / metrics


def W(s: str | None, *, strip_lines: bool = False) -> str:
    s = (s or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = [ln.strip() if strip_lines else ln.rstrip() for ln in s.split("\n")]
    out: list[str] = []
    for ln in lines:
        if not ln.strip():
            if out and out[-1] == "":
                continue
            out.append("")
        else:
            out.append(ln)
    return "\n".join(out).strip()


def nes(a: str, b: str) -> float:
    if not a and not b:
        return 1.0
    return 1.0 - Levenshtein.distance(a, b) / max(len(a), len(b))


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


# bench-local sign-off detector (deliberately independent of the cleaner's own rules)
_CLOSE = re.compile(
    r"^\s*(thanks|thank you|thx|cheers|best|regards|best regards|kind regards|warm regards|sincerely|"
    r"take care|love|yours|all the best|many thanks|rgds|talk soon|your pal|pozdrawiam|z powa[zż]aniem|"
    r"med venlig hilsen|venlig hilsen|hilsen|kh|mvh|med v[äa]nlig h[äa]lsning|v[äa]nliga h[äa]lsningar|"
    r"h[äa]lsningar|mit freundlichen gr[üu](ß|ss)en|gr[üu](ß|ss)e|cordialement|saludos|groeten|met vriendelijke groet)"
    r"\b[\s,.!]*([A-Z][\w.'-]*(\s+[A-Z][\w.'-]*)?[.!]?)?\s*$",
    re.I,
)
_NAMEISH = re.compile(r"^\s*[-/~]?\s*[A-ZÀ-Þ][\w.'’-]*(\s+[A-ZÀ-Þ][\w.'’-]*){0,3}\s*[.,]?\s*$")


def signoff_prefix(sig_lines: list[str]) -> int:
    """How many leading lines of an annotated signature block are a sign-off (closing and/or name)."""
    k = 0
    if k < len(sig_lines) and _CLOSE.match(sig_lines[k]) and len(sig_lines[k]) <= 40:
        k += 1
    if k < len(sig_lines) and _NAMEISH.match(sig_lines[k]) and not re.search(r"[\d@]", sig_lines[k]) and len(sig_lines[k]) <= 40:
        k += 1
    return k


def is_signoff_text(s: str) -> bool:
    lines = [x for x in s.split("\n") if x.strip()]
    return bool(lines) and len(lines) <= 3 and signoff_prefix(lines) == len(lines)


# ---------------------------------------------------------------- cleaners

Cleaner = Callable[..., str]


def ours(text: str | None = None, html: str | None = None, languages=None) -> str:
    return extract_author_text(text, html).text


def _plain(text, html):
    return text if text is not None else html_to_text(html or "")


def mpr(text: str | None = None, html: str | None = None, languages=None) -> str:
    from mailparser_reply import EmailReplyParser
    from mailparser_reply.constants import MAIL_LANGUAGES

    langs = list(languages) if languages else [k for k in MAIL_LANGUAGES if k != "david"]
    return EmailReplyParser(languages=langs).parse_reply(_plain(text, html)) or ""


def erp(text: str | None = None, html: str | None = None, languages=None) -> str:
    from email_reply_parser import EmailReplyParser

    return EmailReplyParser.parse_reply(_plain(text, html)) or ""


CLEANERS: dict[str, Cleaner] = {"ours": ours, "mail-parser-reply": mpr, "email-reply-parser": erp}


def safe(fn: Cleaner, **kw) -> str:
    try:
        return fn(**kw)
    except Exception as exc:  # a baseline crash counts as empty output
        return f"<<error {type(exc).__name__}>>"


def read(p: Path) -> str:
    return p.read_text(encoding="utf-8", errors="replace")


def removed_lines(inp: list[str], out: str) -> list[bool]:
    """Per input line: True when the cleaner removed it (alignment on stripped lines)."""
    a = [x.strip() for x in inp]
    b = [x.strip() for x in out.replace("\r\n", "\n").split("\n")]
    kept = [False] * len(a)
    for blk in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        for t in range(blk.size):
            kept[blk.a + t] = True
    return [not k for k in kept]


# ---------------------------------------------------------------- suites

Rows = list[tuple[str, str, dict[str, str]]]


def _sig_eval(items, cleaner) -> dict:
    """items: list of (input_lines, gold_sig_flags, neutral_flags). Returns metrics for full and sign-off-aware views."""
    res = {}
    for view in ("full", "aware"):
        tp = fp = fn = 0
        det_ok = exact = 0
        for inp, gold, neutral, extra_neutral in items:
            out = safe(cleaner, text="\n".join(inp))
            rem = removed_lines(inp, out)
            g_set, p_set = set(), set()
            for k, ln in enumerate(inp):
                if not ln.strip() or extra_neutral[k]:
                    continue
                if view == "aware" and neutral[k]:
                    continue
                if gold[k]:
                    g_set.add(k)
                if rem[k]:
                    p_set.add(k)
            tp += len(g_set & p_set)
            fp += len(p_set - g_set)
            fn += len(g_set - p_set)
            det_ok += bool(g_set) == bool(p_set)
            exact += g_set == p_set
        p, r, f = prf(tp, fp, fn)
        res[view] = dict(p=p, r=r, f1=f, det=det_ok / len(items), exact=exact / len(items))
    return res


def suite_forge(kit: Path, limit: int | None) -> Rows:
    base = kit / "mailgun-forge" / "dataset"
    items = []
    for folder in ("P", "N"):
        for body in sorted((base / folder).glob("*_body"))[:limit]:
            raw = read(body).split("\n")
            if raw and raw[-1] == "":
                raw = raw[:-1]
            inp = [ln[5:] if ln.startswith("#sig#") else ln for ln in raw]
            gold = [ln.startswith("#sig#") for ln in raw]
            sig_idx = [k for k, g in enumerate(gold) if g and inp[k].strip()]
            neutral = [False] * len(inp)
            n_so = signoff_prefix([inp[k] for k in sig_idx])
            for k in sig_idx[:n_so]:
                neutral[k] = True
            items.append((inp, gold, neutral, [False] * len(inp)))
    results = {name: _sig_eval(items, fn) for name, fn in CLEANERS.items()}
    rows: Rows = []
    n = len(items)
    for view, label in (("full", "all lines"), ("aware", "sign-off-aware")):
        for met, title in (("f1", "line F1"), ("p", "line precision"), ("r", "line recall"), ("det", "email detection acc"), ("exact", "exact-block rate")):
            rows.append((f"forge ({n} emails, {label})", title, {k: f"{v[view][met]:.3f}" for k, v in results.items()}))
    return rows


def _text_rows(suite: str, cases: list[tuple[dict, str]], *, strip_lines: bool = False, label: str = "") -> Rows:
    """cases: list of (kwargs for the cleaner, expected text)."""
    rows: Rows = []
    scores = {}
    for name, fn in CLEANERS.items():
        ex = ns = 0.0
        for kw, exp in cases:
            out = W(safe(fn, **kw), strip_lines=strip_lines)
            e = W(exp, strip_lines=strip_lines)
            ex += out == e
            ns += nes(out, e)
        scores[name] = (ex / len(cases), ns / len(cases))
    rows.append((f"{suite} ({len(cases)}{label})", "exact", {k: f"{v[0]:.3f}" for k, v in scores.items()}))
    rows.append((f"{suite} ({len(cases)}{label})", "NES", {k: f"{v[1]:.3f}" for k, v in scores.items()}))
    return rows


def _js_regex(v: dict) -> re.Pattern:
    flags = 0
    if "i" in v.get("flags", ""):
        flags |= re.I
    if "m" in v.get("flags", ""):
        flags |= re.M
    return re.compile(v["pattern"], flags)


def suite_crisp(kit: Path, limit: int | None) -> Rows:
    base = kit / "crisp-oss-email-reply-parser"
    recs = [json.loads(x) for x in read(base / "expected.jsonl").splitlines() if x.strip()][:limit]
    text_targets = {"fragments[0]", "fragments[0].trimmed", "visible_text", "visible_text.trimmed"}
    exact_cases, aware_cases = [], []
    for r in recs:
        for c in r["checks"]:
            if c["op"] == "equals" and c["target"] in text_targets:
                kw = {"text": read(base / r["fixture"])}
                exact_cases.append((kw, c["value"]))
                name = Path(r["fixture"]).stem
                # email_2: interleaved, fragments[0] is only 'Hi,'; email_with_regards drops the sign-off
                if name not in ("email_2", "email_with_regards"):
                    aware_cases.append((kw, c["value"]))
                break
    rows = _text_rows("crisp", exact_cases, label=" exact-text records")
    rows += _text_rows("crisp", aware_cases, label=" sign-off-aware, excl. email_2/email_with_regards")
    # pass rate over records whose checks all apply to a text output
    applicable, passed = 0, {k: 0 for k in CLEANERS}
    na = 0
    for r in recs:
        ok_checks = []
        for c in r["checks"]:
            t, op = c["target"], c["op"]
            if t in text_targets and op in ("equals", "regex_match"):
                ok_checks.append(c)
            elif t == "quoted_text" and op == "regex_match":
                ok_checks.append(c)
            else:
                ok_checks = None
                break
        if not ok_checks:
            na += 1
            continue
        applicable += 1
        text = read(base / r["fixture"])
        for name, fn in CLEANERS.items():
            raw = safe(fn, text=text)
            out = W(raw)
            good = True
            for c in ok_checks:
                if c["op"] == "equals":
                    good &= out == W(c["value"])
                elif c["target"] == "quoted_text":
                    good &= not _js_regex(c["value"]).search(raw)
                else:
                    good &= bool(_js_regex(c["value"]).search(raw.strip() if "trimmed" in c["target"] else raw.lstrip("\n")))
            passed[name] += good
    rows.append((f"crisp ({applicable} records with applicable checks; {na} n/a)", "pass rate", {k: f"{v / max(applicable, 1):.3f}" for k, v in passed.items()}))
    return rows


def suite_alfonsrv(kit: Path, limit: int | None) -> Rows:
    base = kit / "alfonsrv-mail-parser-reply"
    recs = [json.loads(x) for x in read(base / "expected.jsonl").splitlines() if x.strip()][:limit]
    exact_cases = []
    for r in recs:
        for c in r["checks"]:
            if c["target"] == "replies[0].body" and c["op"] == "equals":
                exact_cases.append(({"text": read(base / r["fixture"]), "languages": r.get("languages")}, c["value"]))
    rows = _text_rows("alfonsrv", exact_cases, strip_lines=True, label=" exact replies[0].body")
    # substring checks: direct (contains / not_contains on replies[0].body) and derived (must be absent)
    for view in ("all", "aware"):
        n_checks, ok = 0, {k: 0 for k in CLEANERS}
        n_rec, rec_ok = 0, {k: 0 for k in CLEANERS}
        for r in recs:
            checks = []
            for c in r["checks"]:
                t, op, v = c["target"], c["op"], c.get("value")
                if not isinstance(v, str) or not v.strip():
                    continue
                if view == "aware" and op != "contains" and is_signoff_text(v.lstrip("> ")):
                    continue  # a sign-off is author text under our convention
                if t == "replies[0].body" and op in ("contains", "not_contains"):
                    checks.append((op == "contains", v))
                elif (t == "replies[0].signatures" or re.match(r"replies\[[1-9]\]\.(body|content|headers|signatures)", t)) and op in ("contains", "equals"):
                    if view == "aware" and t == "replies[0].signatures" and is_signoff_text(v.lstrip("> ")):
                        continue  # a sign-off is author text under our convention
                    checks.append((False, v))
            if not checks:
                continue
            text = read(base / r["fixture"])
            n_rec += 1
            n_checks += len(checks)
            for name, fn in CLEANERS.items():
                out = W(safe(fn, text=text, languages=r.get("languages")), strip_lines=True)
                good = [(W(v, strip_lines=True) in out) == want for want, v in checks]
                ok[name] += sum(good)
                rec_ok[name] += all(good)
        lab = "all" if view == "all" else "sign-off-aware"
        rows.append((f"alfonsrv ({n_checks} substring checks, {lab})", "check pass rate", {k: f"{v / max(n_checks, 1):.3f}" for k, v in ok.items()}))
        rows.append((f"alfonsrv ({n_rec} records, {lab})", "record pass rate", {k: f"{v / max(n_rec, 1):.3f}" for k, v in rec_ok.items()}))
    return rows


def suite_quotequail(kit: Path, limit: int | None) -> Rows:
    base = kit / "closeio-quotequail"
    recs = [json.loads(x) for x in read(base / "expected.jsonl").splitlines() if x.strip()]
    info: dict[str, dict] = {}
    for r in recs:
        if r["function"] != "unwrap_html":
            continue
        d: dict = {}
        if "expected" in r:
            d = dict(r["expected"])
        else:
            for c in r["checks"]:
                if c["op"] == "equals":
                    d[c["key"]] = c["value"]
                elif c["op"] == "equals_file":
                    d[c["key"]] = read(base / c["value"])
        info[r["fixture"]] = d
    items = sorted(info.items())[:limit]
    cases = []
    for fx, d in items:
        cases.append(({"html": read(base / fx)}, html_to_text(d.get("html_top") or "")))
    rows = _text_rows("quotequail", cases, label=" html_top")
    # forward detection (only ours has a forward flag)
    conf = {("forward", "forward"): 0, ("forward", "reply"): 0, ("reply", "forward"): 0, ("reply", "reply"): 0}
    leak_cases = {k: 0 for k in CLEANERS}
    leak_lines = {k: [0, 0] for k in CLEANERS}
    for fx, d in items:
        html = read(base / fx)
        pred = "forward" if extract_author_text(None, html).is_forward else "reply"
        conf[(d["type"], pred)] += 1
        wrapped = [W(x) for x in html_to_text(d.get("html") or "").split("\n") if len(x.strip()) > 3]
        for name, fn in CLEANERS.items():
            out_lines = {W(x) for x in safe(fn, html=html).split("\n")}
            leaked = sum(1 for x in wrapped if x in out_lines)
            leak_lines[name][0] += leaked
            leak_lines[name][1] += len(wrapped)
            leak_cases[name] += leaked > 0
    acc = (conf[("forward", "forward")] + conf[("reply", "reply")]) / max(len(items), 1)
    rows.append((f"quotequail ({len(items)})", "forward-detection accuracy", {"ours": f"{acc:.3f}", "mail-parser-reply": "n/a", "email-reply-parser": "n/a"}))
    rows.append(
        (
            f"quotequail ({len(items)})",
            "forward confusion (gold→pred) f→f/f→r/r→f/r→r",
            {"ours": "/".join(str(conf[k]) for k in conf), "mail-parser-reply": "n/a", "email-reply-parser": "n/a"},
        )
    )
    rows.append((f"quotequail ({len(items)})", "wrapped-message lines leaked (lower is better)", {k: f"{v[0]}/{v[1]}" for k, v in leak_lines.items()}))
    return rows


def _first_plain_part(eml_bytes: bytes) -> str:
    msg = email.message_from_bytes(eml_bytes, policy=email.policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return part.get_content()
    return ""


def suite_talon(kit: Path, limit: int | None) -> Rows:
    base = kit / "mailgun-talon"
    recs = [json.loads(x) for x in read(base / "expected.jsonl").splitlines() if x.strip()]
    rows: Rows = []
    std = [r for r in recs if r["group"] == "standard_replies"][:limit]
    cases = [({"text": _first_plain_part((base / r["fixture"]).read_bytes())}, r["expected_text"]) for r in std]
    rows += _text_rows("talon standard_replies", cases, label=", quote-only reference")
    aware = [c for c, r in zip(cases, std) if Path(r["fixture"]).stem not in ("iphone", "sparrow")]
    rows += _text_rows("talon standard_replies", aware, label=", signature-aware: excl. iphone/sparrow")
    html_cases = []
    for r in recs:
        if r["group"] == "html_replies":
            html_cases.append(({"html": read(base / r["fixture"])}, r["expected_text"]))
        elif r["group"] == "html_misc":
            html_cases.append(({"html": read(base / r["fixture"])}, html_to_text(r["expected_html"])))
    html_cases = html_cases[:limit]
    rows += _text_rows("talon html (replies+misc)", html_cases)
    nows = {}
    for name, fn in CLEANERS.items():
        nows[name] = sum(re.sub(r"\s", "", safe(fn, **kw)) == re.sub(r"\s", "", e) for kw, e in html_cases) / len(html_cases)
    rows.append((f"talon html (replies+misc) ({len(html_cases)})", "upstream criterion (equal w/o whitespace)", {k: f"{v:.3f}" for k, v in nows.items()}))
    # misc: raw eml as plain text
    misc = [r for r in recs if r["group"] == "misc"]
    for r in misc:
        raw = read(base / r["fixture"])
        res = {}
        for name, fn in CLEANERS.items():
            out = safe(fn, text=raw)
            res[name] = "pass" if out.strip() and "From" not in out else "fail"
        rows.append(("talon misc (1, raw .eml)", "non-empty and no 'From'", res))
    # signature_stripped: remaining text exact (full = talon's convention; aware = sign-off kept)
    sig = [r for r in recs if r["group"] == "signature_stripped"]
    full_cases, aware_cases = [], []
    for r in sig:
        body = read(base / r["fixture"])
        kw = {"text": body}
        full_cases.append((kw, r["expected_text"]))
        sl = [x for x in r["expected_signature"].split("\n") if x.strip()]
        k = signoff_prefix(sl)
        exp = r["expected_text"] + ("\n\n" + "\n".join(sl[:k]) if k else "")
        aware_cases.append((kw, exp))
    rows += _text_rows("talon signature_stripped", full_cases, label=", text, talon convention")
    rows += _text_rows("talon signature_stripped", aware_cases, label=", text, sign-off kept")
    # signature_annotated: line P/R/F1, #reply# lines neutral
    items = []
    for r in recs:
        if r["group"] != "signature_annotated":
            continue
        raw = read(base / r["fixture"]).split("\n")
        inp, gold, reply = [], [], []
        for ln in raw:
            if ln.startswith("#sig#"):
                inp.append(ln[5:]); gold.append(True); reply.append(False)
            elif ln.startswith("#reply#"):
                inp.append(ln[7:]); gold.append(False); reply.append(True)
            else:
                inp.append(ln); gold.append(False); reply.append(False)
        sig_idx = [k for k, g in enumerate(gold) if g and inp[k].strip()]
        neutral = [False] * len(inp)
        for k in sig_idx[: signoff_prefix([inp[k] for k in sig_idx])]:
            neutral[k] = True
        # header lines of 102682_R_S (From:/Subject:/Date:) are not author text either: neutral
        extra = [rp or bool(re.match(r"^(From|To|Subject|Date|Sent):", inp[k])) for k, rp in enumerate(reply)]
        items.append((inp, gold, neutral, extra))
    res = {name: _sig_eval(items, fn) for name, fn in CLEANERS.items()}
    for view, lab in (("full", "all lines"), ("aware", "sign-off-aware")):
        rows.append((f"talon signature_annotated ({len(items)}, {lab})", "line F1", {k: f"{v[view]['f1']:.3f}" for k, v in res.items()}))
    return rows


def office_dir() -> Path:
    """The annotated real office mail suite shipped with the repo (bench/cleaning/spamassassin-office)."""
    return REPO / "bench" / "cleaning" / "spamassassin-office"


def office_items(limit: int | None = None) -> list[tuple[str, list[str], list[str]]]:
    """(id, input lines, per-line zone: '' author / 'sig' / 'quote') from the ``#sig#`` / ``#quote#`` bodies."""
    items = []
    for body in sorted((office_dir() / "dataset").glob("*_body"))[:limit]:
        raw = read(body).split("\n")
        inp, zone = [], []
        for ln in raw:
            m = re.match(r"^#(sig|quote)#", ln)
            zone.append(m.group(1) if m else "")
            inp.append(ln[m.end():] if m else ln)
        items.append((body.name[: -len("_body")], inp, zone))
    return items


def suite_office(kit: Path, limit: int | None) -> Rows:
    """Real office mail (SpamAssassin ham), zone-annotated: ruled / contact signatures, Lotus headers,
    disclaimers, quotes. The sign-off is author text in the annotation (our convention), so one view."""
    items = office_items(limit)
    rows: Rows = []
    n = len(items)
    res: dict[str, dict[str, str]] = {}
    for name, fn in CLEANERS.items():
        tp = fp = fn_ = 0
        exact = 0
        sig_leak = quote_leak = 0
        n_sig = n_quote = 0
        for _id, inp, zone in items:
            rem = removed_lines(inp, safe(fn, text="\n".join(inp)))
            nb = [k for k, ln in enumerate(inp) if ln.strip()]
            g = {k for k in nb if zone[k]}
            p = {k for k in nb if rem[k]}
            tp += len(g & p)
            fp += len(p - g)
            fn_ += len(g - p)
            exact += g == p
            for z in ("sig", "quote"):
                gz = {k for k in nb if zone[k] == z}
                if not gz:
                    continue
                leaked = bool(gz - p)
                if z == "sig":
                    n_sig += 1
                    sig_leak += leaked
                else:
                    n_quote += 1
                    quote_leak += leaked
        pr, rc, f1 = prf(tp, fp, fn_)
        res[name] = {
            "line F1": f"{f1:.3f}",
            "line precision": f"{pr:.3f}",
            "line recall": f"{rc:.3f}",
            "exact-zone rate": f"{exact / max(n, 1):.3f}",
            "signed emails leaking a signature line (lower is better)": f"{sig_leak}/{n_sig}",
            "quoting emails leaking a quoted line (lower is better)": f"{quote_leak}/{n_quote}",
            "author lines removed (lower is better)": str(fp),
        }
    for metric in next(iter(res.values())):
        rows.append((f"office real mail ({n} emails)", metric, {k: v[metric] for k, v in res.items()}))
    return rows


SUITES = {
    "mailgun-forge": suite_forge,
    "crisp-oss-email-reply-parser": suite_crisp,
    "alfonsrv-mail-parser-reply": suite_alfonsrv,
    "closeio-quotequail": suite_quotequail,
    "mailgun-talon": suite_talon,
    "spamassassin-office": suite_office,
}


def all_inputs(kit: Path) -> list[dict]:
    """Every bench input once, as cleaner kwargs (for the throughput measurement)."""
    out: list[dict] = []
    for p in sorted((kit / "mailgun-forge" / "dataset").glob("*/*_body")):
        out.append({"text": read(p).replace("#sig#", "")})
    for p in sorted((kit / "crisp-oss-email-reply-parser" / "test" / "fixtures").glob("*.txt")):
        out.append({"text": read(p)})
    for p in sorted((kit / "alfonsrv-mail-parser-reply" / "test" / "emails").glob("*.txt")):
        out.append({"text": read(p)})
    for p in sorted((kit / "closeio-quotequail" / "tests" / "files").glob("*.html")):
        if "unwrapped" not in p.name:
            out.append({"html": read(p)})
    t = kit / "mailgun-talon" / "tests" / "fixtures"
    for p in sorted((t / "standard_replies").glob("*.eml")):
        out.append({"text": _first_plain_part(p.read_bytes())})
    for p in sorted(t.glob("**/*.html")):
        out.append({"html": read(p)})
    return out


def throughput(kit: Path, repeat: int = 5) -> tuple[int, float]:
    inputs = all_inputs(kit)
    for kw in inputs:  # warm-up (regex compilation, imports)
        extract_author_text(kw.get("text"), kw.get("html"))
    t0 = time.perf_counter()
    for _ in range(repeat):
        for kw in inputs:
            extract_author_text(kw.get("text"), kw.get("html"))
    dt = time.perf_counter() - t0
    return len(inputs), len(inputs) * repeat / dt


def run(limit: int | None = None, suites: list[str] | None = None) -> Rows:
    kit = kit_dir()
    if not kit.is_dir():
        raise SystemExit(f"benchmark kit not found at {kit} (set MAILVOICE_SHARED)")
    rows: Rows = []
    for name, fn in SUITES.items():
        if suites and name not in suites:
            continue
        rows += fn(kit, limit)
    return rows


def to_markdown(rows: Rows) -> str:
    names = list(CLEANERS)
    out = ["| suite | metric | " + " | ".join(names) + " |", "| --- | --- | " + " | ".join("---:" for _ in names) + " |"]
    for suite, metric, vals in rows:
        out.append(f"| {suite} | {metric} | " + " | ".join(vals.get(n, "") for n in names) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="cases per suite (smoke runs)")
    ap.add_argument("--suite", action="append", help="only these suites")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    rows = run(args.limit, args.suite)
    cpu = os.cpu_count()
    print(f"mailvoice cleaning benchmark — {_dt.date.today().isoformat()} — {platform.machine()} {platform.system()}, {cpu} cores, Python {platform.python_version()}")
    print()
    print(to_markdown(rows))
    n, rate = throughput(kit_dir())
    print()
    print(f"throughput: extract_author_text over {n} bench inputs: {rate:,.0f} messages/s (single process)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "throughput_msgs_per_s": rate, "inputs": n}, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
