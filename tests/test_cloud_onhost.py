"""The on-host run step end to end, locally: the tiny model, moto's S3 server as the bucket.

A launch (stand-in `sky`) uploads the dataset encrypted and writes the task; its run line is
executed here as the GPU host would. Host A is killed with -9 mid-run; host B, a fresh disk,
restores the newest uploaded checkpoint and finishes; the adapter equals an uninterrupted run's.
`cloud fetch` then restores it locally and removes the remote dataset and checkpoints.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

from safetensors.torch import load_file  # noqa: E402

from mailvoice.cloud import fetch, prepare  # noqa: E402
from mailvoice.cloud import remote  # noqa: E402
from mailvoice.vault import list_backups, new_identity  # noqa: E402
from mailvoice.workspace import user_space  # noqa: E402

from test_train_tiny import _write_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "cloud-test"


@pytest.fixture(scope="module")
def s3():
    from support.moto_s3 import moto_s3

    with moto_s3(BUCKET) as (endpoint, client):
        yield endpoint


def _host(run_line: str, host_ws: Path, key_text: str, pub: str, env=None, job=None):
    """Run the task's run step as the GPU host would (our interpreter instead of the host venv)."""
    args = shlex.split(run_line)
    assert args[1:3] == ["-m", "mailvoice.cloud.onhost"]
    args = args[3:]
    if job:
        args[args.index("--job") + 1] = job
    host_env = {**os.environ, "MAILVOICE_HOME": str(host_ws), "MAILVOICE_AGE_IDENTITY": key_text,
                "MAILVOICE_AGE_RECIPIENTS": pub, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mailvoice.cloud.onhost", *args], env=host_env,
                          capture_output=True, text=True, timeout=900)


def _adapter(final_dir: Path):
    return load_file(str(final_dir / "adapter_model.safetensors"))


def test_preempted_host_resumes_from_the_bucket_and_fetch_cleans_up(s3, tiny_model, tmp_path, monkeypatch):
    ws = tmp_path / "operator"
    monkeypatch.setenv("MAILVOICE_HOME", str(ws))
    for k in ("MAILVOICE_AGE_IDENTITY", "MAILVOICE_AGE_RECIPIENTS", "MAILVOICE_BACKUP_PASSPHRASE", "HF_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    space = user_space("dana_1", ws).ensure()
    _write_data(space.data, n=28)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(json.dumps({"base_model": str(tiny_model), "max_steps": 12, "save_steps": 3,
                               "per_device_train_batch_size": 2, "learning_rate": 3e-3, "lora_dropout": 0.0,
                               "report_to": [], "save_total_limit": 10}))
    ident = tmp_path / "host.key"
    pub = new_identity(ident)
    key_text = [l for l in ident.read_text().splitlines() if l.startswith("AGE-SECRET-KEY-1")][0]

    plan = prepare("dana_1", cfg, f"s3://{BUCKET}/mv", recipients=[pub], identity_file=ident, gpu="RTX4090",
                   install="mailvoice==0.1.0", keep_checkpoints=1, workspace=ws)
    assert plan.keys.secrets == ["MAILVOICE_AGE_IDENTITY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    assert plan.task["envs"]["AWS_ENDPOINT_URL"] == s3
    url, job, run_line = plan.bucket, plan.job, plan.task["run"]

    # host A: killed with -9 at step 7 (checkpoints 3 and 6 uploaded; 3 pruned, keep 1)
    a = _host(run_line, tmp_path / "hostA", key_text, pub, env={"MAILVOICE_TEST_KILL_AT_STEP": "7"})
    assert a.returncode == -signal.SIGKILL, a.stderr[-3000:]
    st = remote.read_status("dana_1", url, job)
    assert st["state"] == "training" and st["last_checkpoint"]["step"] == 6
    assert [c.step for c in remote.job_checkpoints("dana_1", url, job)] == [6]

    # reference: an uninterrupted run of the same data and config, under another job name
    ref = _host(run_line, tmp_path / "hostR", key_text, pub, job=f"{job}-ref")
    assert ref.returncode == 0, ref.stderr[-3000:]

    # host B: a fresh disk; SkyPilot restarts the same command after the preemption
    b = _host(run_line, tmp_path / "hostB", key_text, pub)
    assert b.returncode == 0, b.stderr[-3000:]
    assert "restored checkpoint step 6" in b.stdout
    assert json.loads(b.stdout.strip().splitlines()[-1])["steps"] == 12
    done = remote.read_status("dana_1", url, job)
    assert done["state"] == "done" and done["steps"] == 12 and done["tokens_per_s"] > 0

    want = _adapter(tmp_path / "hostR" / "dana_1" / "runs" / f"{job}-ref" / "final")
    got = _adapter(tmp_path / "hostB" / "dana_1" / "runs" / job / "final")
    assert want.keys() == got.keys()
    for k in want:
        assert (want[k] - got[k]).abs().max() < 1e-5, k

    # restarted once more after it finished: nothing to do
    again = _host(run_line, tmp_path / "hostC", key_text, pub)
    assert again.returncode == 0 and "already finished" in again.stdout

    # fetch: the adapter comes home; the job's remote dataset and checkpoints go, the model stays
    r = fetch("dana_1", identity_file=ident, workspace=ws)
    assert r.job == job and r.final_dir == space.runs / job / "final"
    fetched = _adapter(r.final_dir)
    for k in want:
        assert (want[k] - fetched[k]).abs().max() < 1e-5, k
    assert any(x.startswith("dataset backup") for x in r.removed)
    assert any(x.startswith("checkpoint backup") for x in r.removed)
    left = list_backups("dana_1", url)
    assert plan.data_backup not in {b.backup_id for b in left}
    assert done["final_backup"] in {b.backup_id for b in left}
    assert remote.job_checkpoints("dana_1", url, job) == []
    rec = json.loads((space.path / "cloud" / job / "job.json").read_text())
    assert rec["state"] == "fetched" and rec["result"]["steps"] == 12
    thr = json.loads((ws / "cloud-throughput.json").read_text())["runs"]
    assert thr[-1]["job"] == job and thr[-1]["gpu"] == "RTX4090"


def test_a_swapped_user_and_bucket_is_refused_and_writes_nothing(tmp_path, monkeypatch):
    """The user id is checked before any key is built: the bucket URL passed as the user (the
    old argument order) once wrote ``dana_1/s3:/…`` files into the working directory."""
    from mailvoice.errors import MailvoiceError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(MailvoiceError, match="invalid user id"):
        remote.write_status("s3://cloud-test/mv", "dana_1", "job-1", state="training")
    assert list(tmp_path.iterdir()) == []
