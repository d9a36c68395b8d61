"""The wheel carries its samples: built from this checkout, installed into a fresh venv outside it,
``prepare`` and ``evaluate`` run from an empty folder on the packaged mailboxes and prompts, and
evaluate's voice calibration finds the packaged contrast mailbox (issue 16: a wheel used to run
uncalibrated, silently, because the samples lived only in the checkout).

The venv gets no pip and no index: the wheel goes in with ``--no-deps`` and the dependencies come
from the test's own environment through a ``.pth`` line (a path added by a ``.pth`` line is not
scanned for further ``.pth`` files, so the editable install of the checkout stays out).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import DANA, ROOT, train_tiny

pytestmark = pytest.mark.slow  # two prepares and an evaluate through subprocesses: about two minutes

#: What a wheel is built from (a copy, so the build leaves no build/ or egg-info in the checkout).
BUILD_INPUTS = ("pyproject.toml", "README.md", "src", "configs", "data-samples")


def _run(cmd, *, cwd, env, timeout=600):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd[:3]} exited {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv outside the checkout with only the wheel's mailvoice in it; (venv, clean env)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src-copy"
    src.mkdir()
    for name in BUILD_INPUTS:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(p, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(tmp / "dist"), str(src)], cwd=tmp, env=env)
    (wheel,) = (tmp / "dist").glob("mailvoice-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=env)
    py = venv / "bin" / "python"
    site = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp, env=env).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "mailvoice-test-deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", str(wheel)], cwd=tmp, env=env)
    return venv, Path(site), {**env, "HF_HUB_OFFLINE": "1", "MAILVOICE_NO_PROGRESS": "1"}


def test_wheel_prepares_and_evaluates_calibrated_outside_the_checkout(installed, tiny_model, tmp_path):
    venv, site, env = installed
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    where = _run([str(venv / "bin" / "python"), "-c", "import mailvoice, mailvoice.samples as s; "
                  "print(mailvoice.__file__); print(s.sample(*s.DANA_MBOX))"], cwd=cwd, env=env).stdout.split()
    pkg, dana = Path(where[0]), Path(where[1])
    assert pkg.is_relative_to(site) and dana.is_relative_to(site), where  # the wheel's copy, not the checkout
    assert not dana.is_symlink() and dana.read_bytes() == (ROOT / "data-samples/mailboxes/dana-sent.mbox").read_bytes()

    mv = str(venv / "bin" / "mailvoice")
    _run([mv, "prepare", "--user-id", "dana", "--source", str(dana), "--user-email", DANA,
          "--output", str(cwd / "data"), "--min-emails", "20"], cwd=cwd, env=env)
    assert (cwd / "data" / "train_chat.jsonl").is_file() and (cwd / "data" / "val_chat.jsonl").is_file()

    run = train_tiny(tiny_model, cwd / "data", tmp_path / "run", steps=1)
    out = cwd / "eval" / "evaluation-results.json"
    # no --test-data and no --control-data: both must come from the package
    _run([mv, "evaluate", "--model", str(run.run_dir), "--data", str(cwd / "data"), "--output", str(out),
          "--max-new-tokens", "4", "--max-val-prompts", "0", "--emailai-prompts", "0"], cwd=cwd, env=env)
    results = json.loads(out.read_text())
    packaged_prompts = [d["prompt"] for d in json.loads((ROOT / "data-samples" / "test-prompts.json").read_text())]
    assert [r["prompt"] for r in results if r["source"] == "test-prompts"] == packaged_prompts
    m = json.loads(out.with_name("metrics.json").read_text())
    control = Path(m["control"]["source"])
    assert control.is_relative_to(site) and control.name == "contrast-sent.mbox", m["control"]
    assert m["control"]["heldout"] >= 10
    assert m["voice"]["calibrated"], m["voice"]["reason"]
