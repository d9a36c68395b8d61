"""Shared fixtures: a tiny random Llama (seconds), the real SmolLM2 (built once into the cache)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("MAILVOICE_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SAMPLES = ROOT / "data-samples"
DANA_MBOX = SAMPLES / "mailboxes" / "dana-sent.mbox"
MARCUS_MBOX = SAMPLES / "mailboxes" / "contrast-sent.mbox"
DANA = "dana@willowcreek-design.example"


def trimmed_mbox(path: Path, n: int = 60, source: Path = DANA_MBOX) -> Path:
    """The first ``n`` messages of a sample mailbox: enough to prepare, quick to train on."""
    import mailbox

    src, out = mailbox.mbox(str(source)), mailbox.mbox(str(path))
    for i, msg in enumerate(src):
        if i >= n:
            break
        out.add(msg)
    out.close()
    return Path(path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from mailvoice.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def smollm2() -> Path:
    from mailvoice.models import ensure_preset

    return ensure_preset("smollm2-135m")


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("MAILVOICE_HOME", str(ws))
    return ws
