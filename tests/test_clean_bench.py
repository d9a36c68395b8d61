"""Regression floor on the shared cleaning benchmark (skipped when the kit is absent)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MAILVOICE_SHARED") or REPO.parent / "shared")
KIT = SHARED / "benchmarks" / "cleaning"

pytestmark = pytest.mark.skipif(not KIT.is_dir(), reason=f"benchmark kit not found at {KIT}")


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


def test_forge_sample_floor(bench):
    rows = bench.suite_forge(KIT, 40)  # first 40 P + first 40 N bodies
    assert _score(rows, "forge (80 emails, sign-off-aware)", "line F1") >= 0.85
    assert _score(rows, "forge (80 emails, sign-off-aware)", "line precision") >= 0.9


def test_crisp_floor(bench):
    rows = bench.suite_crisp(KIT, None)
    assert _score(rows, "crisp (50 sign-off-aware", "exact") >= 0.95
    assert _score(rows, "crisp (50 sign-off-aware", "NES") >= 0.97


def test_talon_and_quotequail_floor(bench):
    rows = bench.suite_talon(KIT, None)
    assert _score(rows, "talon standard_replies (10", "exact") >= 0.95
    assert _score(rows, "talon html (replies+misc)", "NES") >= 0.9
    rows = bench.suite_quotequail(KIT, None)
    assert _score(rows, "quotequail (9 html_top)", "NES") >= 0.9
    assert _score(rows, "quotequail (9)", "forward-detection accuracy") >= 0.85
