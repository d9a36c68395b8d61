"""bench/gpu/run.sh --tiny: the GPU bench's own script, on CPU, so it cannot rot between GPU runs.

The same steps as on the GPU (a Llama-layout model with Llama 3 special tokens, the sample-shaped
dataset, `mailvoice train` on configs/lora-config-8b.yaml as a subprocess, SIGKILL after the first
checkpoint + resume, merge + logits check, JSON and table), on a tiny model for a few steps.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_tiny_runs_resumes_merges_and_reports(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    r = subprocess.run(["bash", str(ROOT / "bench" / "gpu" / "run.sh"), "--tiny", "--steps", "4", "--levers", "none",
                        "--work", str(tmp_path / "work")], env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp_path / "out" / "gpu-bench.json").read_text())
    assert res["mode"] == "tiny-cpu" and res["dataset"]["train"] == 60

    run = res["runs"]["bf16"]
    assert run["status"] == "ok" and run["chat_format"] == "llama3" and run["steps"] == 4
    for k in ("tokens_per_s", "step_s", "tokens_per_step", "achieved_tflops", "guide_job_projected_s"):
        assert run[k] > 0, k
    assert res["flops"]["per_token"] > 0 and res["guide_job"]["tokens"] > 0

    resume = res["checks"]["resume"]
    assert resume["killed"]["status"] == "killed" and not resume["killed"]["final_written"]
    assert resume["killed"]["checkpoints_at_kill"], "killed only after its first complete checkpoint"
    assert resume["resumed_status"] == "ok"
    assert resume["passed"] and resume["max_rel_l2"] <= 1e-4

    merge = res["checks"]["merge"]
    assert merge["passed"] and merge["max_rel_err"] <= 1e-4
    assert merge["informative"], "the adapter must change the logits, or the comparison proves nothing"

    lines = r.stdout.strip().splitlines()
    assert lines[-2].startswith("check resume: PASS") and lines[-1].startswith("check merge: PASS")


def test_speed_levers_reach_the_model_and_the_trainer(tiny_model, tmp_path):
    """The config keys the bench measures are wired through: attention implementation on the
    model, torch_compile on TRL's SFTConfig, Liger refused on CPU with a notice (Triton is CUDA)."""
    from transformers import TrainerCallback

    from mailvoice.train.config import validate_config
    from mailvoice.train.run import train
    from test_train_tiny import _write_data

    seen = {}

    class Look(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            seen["attn"] = model.config._attn_implementation
            seen["compile"], seen["liger"] = args.torch_compile, args.use_liger_kernel

    notes = []
    cfg = validate_config({"base_model": str(tiny_model), "max_steps": 1, "per_device_train_batch_size": 4,
                           "report_to": [], "attn_implementation": "eager", "use_liger_kernel": True})
    r = train(cfg, data_dir=_write_data(tmp_path / "data", n=12), run_dir=tmp_path / "run", notice=notes.append,
              callbacks=[Look()])
    assert seen == {"attn": "eager", "compile": False, "liger": False}
    assert any("use_liger_kernel needs CUDA" in n for n in notes)
    assert r.summary["step_log"][0][0] == 1 and r.summary["step_log"][0][2] > 0  # [step, seconds, tokens seen]
