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


def prepare_sample(tmp: Path, n: int = 60, **opts):
    """Dana's first ``n`` sample emails prepared into ``tmp/data``; the prepare result."""
    from mailvoice.dataset.build import DatasetOptions
    from mailvoice.dataset.prepare import prepare

    trimmed_mbox(tmp / "dana.mbox", n)
    return prepare(sources=[str(tmp / "dana.mbox")], out_dir=tmp / "data", user_emails=[DANA],
                   opts=DatasetOptions(min_emails=20, **opts), notice=lambda m: None)


def train_tiny(tiny_model: Path, data: Path, run_dir: Path, steps: int = 1, **overrides):
    """``steps`` LoRA steps on the tiny random Llama (seconds); the train result."""
    from mailvoice.train.config import validate_config
    from mailvoice.train.run import train

    cfg = validate_config({"base_model": str(tiny_model), "max_steps": steps, "per_device_train_batch_size": 4,
                           "learning_rate": 5e-3, "lora_dropout": 0.0, "report_to": [], **overrides})
    return train(cfg, data_dir=data, run_dir=run_dir, notice=lambda m: None)


def sample_prompts(path: Path, n: int) -> Path:
    """The first ``n`` bundled test prompts, as an evaluate --test-data file."""
    import json

    path.write_text(json.dumps(json.loads((SAMPLES / "test-prompts.json").read_text())[:n]))
    return path


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
