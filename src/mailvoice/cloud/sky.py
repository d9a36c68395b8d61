"""The SkyPilot CLI, wrapped: managed-job launch, queue, logs, cancel, and its own YAML loader.

SkyPilot is not a dependency of mailvoice and cannot be one: ``skypilot`` pins ``click<8.2``
(our ``huggingface_hub`` needs ``>=8.4.2``) and ``skypilot[vast]`` pulls ``vastai``, which pins
``cryptography==49.0.0`` (we pin 50.0.2). It lives in its own tool environment
(``uv tool install "skypilot[vast]==0.14.1"`` or ``pipx install …``) and we call its ``sky``
command. ``$MAILVOICE_SKY`` names the executable when it is not on PATH. Its interpreter (read
from the script's ``#!`` line, or ``$MAILVOICE_SKY_PYTHON``) loads our YAML with
``sky.Task.from_yaml`` to validate it offline.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import MailvoiceError

# optional: SkyPilot (`sky`) is imported when used; it is not a dependency of mailvoice.

ENV_SKY = "MAILVOICE_SKY"
ENV_SKY_PYTHON = "MAILVOICE_SKY_PYTHON"
INSTALL_HINT = 'install SkyPilot in its own environment: uv tool install "skypilot[vast]==0.14.1" (or set $MAILVOICE_SKY)'
ACTIVE = {"PENDING", "SUBMITTED", "STARTING", "RUNNING", "RECOVERING", "CANCELLING", "WINDING_DOWN"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_JOB_ID = re.compile(r"(?:Managed Job ID|Job submitted, ID)\s*:\s*(\d+)", re.I)

# Loads a task YAML with SkyPilot's own loader and prints what it understood (no cloud calls).
_LOADER = r"""
import json, sys
import sky
t = sky.Task.from_yaml(sys.argv[1])
res = sorted(str(r) for r in t.resources)
refs = [r.name for r in getattr(t, "_managed_secret_refs", [])]
print("MAILVOICE-TASK " + json.dumps({"name": t.name, "resources": res, "envs": sorted(t.envs),
      "inline_secrets": sorted(t.secrets), "secret_refs": refs, "run": t.run, "setup": t.setup,
      "file_mounts": sorted((t.file_mounts or {})), "sky_version": sky.__version__}))
"""


def sky_executable(required: bool = True) -> str | None:
    exe = os.environ.get(ENV_SKY) or shutil.which("sky")
    if exe and (os.path.isfile(exe) or shutil.which(exe)):
        return exe
    if required:
        raise MailvoiceError(f"SkyPilot is not installed: {INSTALL_HINT}")
    return None


def sky_python() -> list[str] | None:
    """A command that runs Python with ``sky`` importable, or None."""
    env = os.environ.get(ENV_SKY_PYTHON)
    if env:
        return shlex.split(env)
    exe = sky_executable(required=False)
    if not exe:
        return None
    try:
        with open(shutil.which(exe) or exe, "rb") as fh:
            first = fh.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if first.startswith("#!") and "python" in first:
        return shlex.split(first[2:].strip())
    return None


def load_task(yaml_path: Path) -> dict | None:
    """Load the YAML with SkyPilot's own ``Task.from_yaml`` (in-process when ``sky`` imports here,
    else with SkyPilot's interpreter). None when SkyPilot is nowhere to be found."""
    try:
        import sky  # noqa: F401  (only where someone installed it beside us)
    except ImportError:
        cmd = sky_python()
        if cmd is None:
            return None
    else:
        cmd = None
    if cmd is None:
        buf, argv = io.StringIO(), sys.argv
        try:
            sys.argv = ["-", str(yaml_path)]
            with contextlib.redirect_stdout(buf):
                exec(compile(_LOADER, "<mailvoice-sky-loader>", "exec"), {"__name__": "__loader__"})
        except Exception as exc:
            raise MailvoiceError(f"SkyPilot rejects the task YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        finally:
            sys.argv = argv
        out = buf.getvalue()
    else:
        try:
            r = subprocess.run([*cmd, "-c", _LOADER, str(yaml_path)], capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MailvoiceError(f"cannot run SkyPilot's Python ({type(exc).__name__})") from None
        if r.returncode != 0:
            if "No module named 'sky'" in (r.stderr or ""):
                return None  # that interpreter is not SkyPilot's
            raise MailvoiceError(f"SkyPilot rejects the task YAML: {_last_line(r.stderr)}")
        out = r.stdout
    for line in out.splitlines():
        if line.startswith("MAILVOICE-TASK "):
            return json.loads(line[len("MAILVOICE-TASK "):])
    raise MailvoiceError("SkyPilot's loader printed nothing we understand")


def _last_line(text: str) -> str:
    lines = [_ANSI.sub("", x).strip() for x in (text or "").splitlines()]
    lines = [x for x in lines if x]
    return lines[-1][:300] if lines else "no output"


def run_sky(args: list[str], *, env: dict | None = None, timeout: float | None = 900, capture: bool = True):
    exe = sky_executable()
    try:
        r = subprocess.run([exe, *args], capture_output=capture, text=True, timeout=timeout,
                           env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise MailvoiceError(f"SkyPilot is not installed: {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise MailvoiceError(f"`sky {args[0]} {args[1] if len(args) > 1 else ''}` did not answer in {timeout:.0f}s") from None
    if r.returncode != 0:
        why = _last_line((r.stderr or "") + "\n" + (r.stdout or "")) if capture else f"exit {r.returncode}"
        raise MailvoiceError(f"`sky {' '.join(a for a in args[:2])}` failed: {why}")
    return r


def check_cloud(cloud: str) -> None:
    """Fail with one line unless SkyPilot has ``cloud`` enabled for compute (``sky check``)."""
    r = run_sky(["check", cloud, "-o", "json"], timeout=300)
    try:
        result = json.loads(r.stdout[r.stdout.index("{"):])
    except ValueError:
        raise MailvoiceError(f"`sky check {cloud}` printed no JSON: {_last_line(r.stdout)}") from None
    for ws in result.values():
        for name, caps in (ws or {}).items():
            if name.lower() == cloud.lower() and (not caps or "compute" in [c.lower() for c in caps]):
                return
    raise MailvoiceError(f"SkyPilot has no enabled cloud {cloud!r}: set up its credentials and run `sky check {cloud}`")


def jobs_launch(yaml_path: Path, name: str, *, secrets: list[str], env: dict | None = None) -> int | None:
    """``sky jobs launch -d -y -n NAME --secret S…`` (values come from the environment, never argv)."""
    args = ["jobs", "launch", "--detach-run", "--yes", "--name", name]
    for s in secrets:
        args += ["--secret", s]
    r = run_sky([*args, str(yaml_path)], env=env, timeout=1800)
    m = _JOB_ID.search(_ANSI.sub("", (r.stdout or "") + (r.stderr or "")))
    return int(m.group(1)) if m else None


def jobs_queue() -> list[dict]:
    r = run_sky(["jobs", "queue", "--all", "-o", "json"], timeout=300)
    text = r.stdout or ""
    try:
        data = json.loads(text[text.index("["):])
    except ValueError:
        raise MailvoiceError(f"`sky jobs queue` printed no JSON: {_last_line(text)}") from None
    return [d for d in data if isinstance(d, dict)]


def job_states(names: set[str] | None = None) -> dict[str, dict]:
    """Newest record per managed-job name (optionally only ``names``)."""
    out: dict[str, dict] = {}
    for rec in jobs_queue():
        n = rec.get("job_name") or rec.get("task_name")
        if not n or (names is not None and n not in names):
            continue
        if n not in out or (rec.get("job_id") or 0) > (out[n].get("job_id") or 0):
            out[n] = rec
    return out


def jobs_logs(name: str, *, follow: bool = True) -> int:
    exe = sky_executable()
    args = [exe, "jobs", "logs", "--name", name] + ([] if follow else ["--no-follow"])
    return subprocess.call(args)


def jobs_cancel(name: str) -> None:
    run_sky(["jobs", "cancel", "--yes", "--name", name], timeout=600)
