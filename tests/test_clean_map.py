"""docs/cleaning.md is the map of the cleaning rules: its files exist and its example test passes."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "cleaning.md").read_text(encoding="utf-8")
MAP = DOC.split("\n# Benchmarks", 1)[0]


def test_every_file_the_map_names_exists():
    named = set(re.findall(r"`((?:sources|clean|dataset)/[\w/]+\.py)", MAP))
    assert {"sources/filters.py", "clean/extract.py", "clean/_rules.py", "dataset/filters.py", "dataset/pii.py"} <= named
    assert [n for n in sorted(named) if not (REPO / "src" / "mailvoice" / n).is_file()] == []
    tests = set(re.findall(r"`(tests/test_\w+\.py)`", MAP))
    assert tests and [t for t in sorted(tests) if not (REPO / t).is_file()] == []


def test_the_maps_rule_functions_exist():
    import importlib

    for mod, names in {
        "mailvoice.clean._rules": ["normalise", "pgp_armour", "wrote_header_at", "header_block_at", "is_device_footer",
                                   "is_disclaimer_start", "tidy", "CLOSING_LINE"],
        "mailvoice.clean.extract": ["_scan_quotes", "_apply_learned", "_signature_stage", "_label_scissors"],
        "mailvoice.sources.filters": ["drop_reason", "process_raw", "DROP_REASONS"],
        "mailvoice.dataset.pii": ["scrub", "scrub_subject", "protected_names"],
    }.items():
        m = importlib.import_module(mod)
        assert [n for n in names if not hasattr(m, n)] == [], mod


def test_the_maps_example_test_passes():
    (code,) = re.findall(r"```python\n(.*?)```", MAP, re.S)
    exec(compile(code, "docs/cleaning.md", "exec"), {})
