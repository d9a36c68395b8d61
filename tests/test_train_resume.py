"""Crash safety: kill -9 mid-run, resume from the newest complete checkpoint, same adapter."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

from test_train_tiny import _write_data

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import os, sys, signal, json
sys.path.insert(0, {src!r})
from pathlib import Path
from transformers import TrainerCallback
from mailvoice.train.config import validate_config
from mailvoice.train.run import train

class Die(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == int(os.environ.get("DIE_AT", "0")):
            os.kill(os.getpid(), signal.SIGKILL)

class Slow(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if os.environ.get("SLOW"):
            import time; time.sleep(0.5)
            Path(sys.argv[3] + ".step").write_text(str(state.global_step))

cfg = validate_config({{"base_model": sys.argv[1], "max_steps": 12, "save_steps": 3, "per_device_train_batch_size": 2,
                        "learning_rate": 3e-3, "lora_dropout": 0.0, "report_to": [], "save_total_limit": 10}})
r = train(cfg, data_dir=Path(sys.argv[2]), run_dir=Path(sys.argv[3]),
          resume=(sys.argv[4] if len(sys.argv) > 4 else None), notice=lambda m: None, callbacks=[Die(), Slow()])
print(json.dumps({{"steps": r.summary["steps"], "stopped_by": r.summary["stopped_by"]}}))
"""


def _run(tiny, data, run_dir, *extra, env=None):
    script = SCRIPT.format(src=str(ROOT / "src"))
    return subprocess.Popen([sys.executable, "-c", script, str(tiny), str(data), str(run_dir), *extra],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _adapter(run_dir):
    return load_file(str(Path(run_dir) / "final" / "adapter_model.safetensors"))


def test_kill_9_then_resume_auto_matches_an_uninterrupted_run(tiny_model, tmp_path):
    data = _write_data(tmp_path / "data", n=28)
    ref = _run(tiny_model, data, tmp_path / "ref")
    out, err = ref.communicate(timeout=600)
    assert ref.returncode == 0, err[-2000:]

    crashed = _run(tiny_model, data, tmp_path / "run", env={"DIE_AT": "7"})
    crashed.communicate(timeout=600)
    assert crashed.returncode == -signal.SIGKILL
    assert not (tmp_path / "run" / "final").exists()
    # a half-written checkpoint (no completion marker) must never be resumed from
    fake = tmp_path / "run" / "checkpoint-9"
    fake.mkdir()
    (fake / "trainer_state.json").write_text("{}")

    resumed = _run(tiny_model, data, tmp_path / "run", "auto")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1])["steps"] == 12

    a, b = _adapter(tmp_path / "ref"), _adapter(tmp_path / "run")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-5, k


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tiny_model, tmp_path):
    data = _write_data(tmp_path / "data", n=28)
    run_dir = tmp_path / "run"
    p = _run(tiny_model, data, run_dir, env={"SLOW": "1"})
    step_file = Path(str(run_dir) + ".step")
    deadline = time.time() + 300
    while time.time() < deadline and not (step_file.exists() and int(step_file.read_text() or 0) >= 4):
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    res = json.loads(out.strip().splitlines()[-1])
    assert res["stopped_by"] == "SIGTERM" and res["steps"] < 12
    assert (run_dir / f"checkpoint-{res['steps']}" / "mailvoice-checkpoint.json").is_file()
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()
