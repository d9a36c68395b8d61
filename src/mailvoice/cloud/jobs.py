"""Launch, queue, watch, fetch and cancel cloud training jobs (SkyPilot managed jobs).

Per job, locally: ``<workspace>/<user>/cloud/<job>/{task.yaml, job.json, dist/*.whl}`` and the
config copy ``<user>/configs/<job>.yaml`` that travels (encrypted) with the dataset backup.
``job.json`` records the estimate, the dataset backup id, the managed-job id and state; it holds
no secrets and no mail.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets as _secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..artifacts import ADAPTER_WEIGHTS, FINAL, RETRIEVAL, find_retrieval
from ..errors import MailvoiceError
from ..models import PRESETS
from ..train.config import load_config
from ..vault import backup, list_backups, restore, storage_options
from ..vault import keys as vkeys
from ..vault.keys import ENV_RECIPIENTS
from ..workspace import make_private_dir, resolve_root, user_space, validate_user_id, write_json
from . import remote, sky
from .estimate import Estimate, check_gpu, estimate_cost, record_throughput
from .task import TaskSpec, build_task, dump_task

S3_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
S3_OPTIONAL_SECRETS = ("AWS_SESSION_TOKEN",)
PUBLIC_ENVS = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION")
TERMINAL_OK = "SUCCEEDED"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def job_name(user_id: str) -> str:
    """A SkyPilot-safe, unique name: mv-<user slug>-<utc time>-<4 hex>."""
    slug = "".join(c if c.isalnum() else "-" for c in user_id.lower()).strip("-")[:30].strip("-") or "user"
    return f"mv-{slug}-{_dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%d-%H%M%S')}-{_secrets.token_hex(2)}"


def dest_url(bucket: str) -> str:
    """``s3://name`` → ``s3://name/mailvoice`` (as ``mailvoice backup``); other URLs as given."""
    if not bucket:
        raise MailvoiceError("--bucket is required (s3://bucket[/prefix])")
    if bucket.startswith("s3://"):
        name = bucket.removeprefix("s3://").strip("/")
        return f"s3://{name}" if "/" in name else f"s3://{name}/mailvoice"
    return bucket


def _source_root() -> Path | None:
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "src" / "mailvoice").is_dir() else None


def build_wheel(out_dir: Path) -> Path:
    """A wheel of this mailvoice (from its source checkout) to ship to the GPU host."""
    root = _source_root()
    if root is None:
        raise MailvoiceError(f"not running from a source checkout: pass --install 'mailvoice=={__version__}' or a pip spec")

    make_private_dir(out_dir)
    with tempfile.TemporaryDirectory(prefix="mailvoice-wheel-") as tmp:
        # build from a copy: setuptools would leave build/ and egg-info in the checkout
        shutil.copytree(root / "src", Path(tmp) / "src",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).is_file():
                shutil.copy2(root / name, Path(tmp) / name)
        r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "-w", str(out_dir), tmp], capture_output=True, text=True, timeout=600)
    wheels = sorted(out_dir.glob("mailvoice-*.whl"))
    if r.returncode != 0 or not wheels:
        raise MailvoiceError(f"building the mailvoice wheel failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return wheels[-1]


def training_files(cfg, data_dir: Path) -> list[str]:
    """The files of ``data/`` a GPU host trains from (names relative to it): the config's train
    and val files and the retrieval index of a ``prepare --rag`` dataset. All scrubbed."""

    names = [cfg.train_file]
    if cfg.val_file and (Path(data_dir) / cfg.val_file).is_file():
        names.append(cfg.val_file)
    if find_retrieval(data_dir) is not None:
        names.append(RETRIEVAL)
    return names


# ------------------------------------------------------------------------------------------ keys


@dataclass
class Keys:
    recipients: list[str]
    secrets: list[str]  # names only
    secret_env: dict[str, str] = field(default_factory=dict)  # values for the sky subprocess env
    missing: list[str] = field(default_factory=list)


def resolve_keys(recipients: list[str] | None, identity_file, bucket: str, base_model: str) -> Keys:
    recips = list(recipients or []) or [r for r in os.environ.get(ENV_RECIPIENTS, "").split(",") if r.strip()]
    names: list[str] = []
    env: dict[str, str] = {}
    missing: list[str] = []
    if recips:
        parsed = vkeys.parse_recipients(recips)  # validates; refuses secret keys given as recipients
        public = {info.public_key for _, info in parsed}
        names.append(vkeys.ENV_IDENTITY)
        ids = vkeys.load_identities(identity_file) if identity_file else vkeys.load_identities()
        if ids:
            if not {str(i.to_public()) for i in ids} & public:
                raise MailvoiceError("the GPU host's identity matches none of the recipients: it could not decrypt the dataset")
            env[vkeys.ENV_IDENTITY] = "\n".join(str(i) for i in ids)
        else:
            missing.append(vkeys.ENV_IDENTITY)
    elif os.environ.get(vkeys.ENV_PASSPHRASE):
        names.append(vkeys.ENV_PASSPHRASE)
    else:
        raise MailvoiceError(f"no recipient: pass --recipient age1… (with the GPU host's identity in --identity or "
                             f"${vkeys.ENV_IDENTITY}), or set ${vkeys.ENV_PASSPHRASE}")
    if bucket.startswith(("s3://", "s3a://")):
        for n in S3_SECRETS:
            names.append(n)
            if not os.environ.get(n):
                missing.append(n)
        names += [n for n in S3_OPTIONAL_SECRETS if os.environ.get(n)]

    if base_model not in PRESETS and not base_model.startswith(("/", ".", "~")) and os.environ.get("HF_TOKEN"):
        names.append("HF_TOKEN")  # gated weights (Llama) on the host
    return Keys(recips, names, env, missing)


# ------------------------------------------------------------------------------------------ launch


@dataclass
class LaunchPlan:
    job: str
    user_id: str
    bucket: str
    dir: Path
    yaml_path: Path
    estimate: Estimate
    task: dict
    keys: Keys
    data_backup: str
    dry_run: bool
    sky_task: dict | None = None  # what SkyPilot's loader made of the YAML; None: SkyPilot not found
    job_id: int | None = None
    record: dict = field(default_factory=dict)


def _record_path(space, job: str) -> Path:
    return space.path / "cloud" / job / "job.json"


def save_record(plan: LaunchPlan, **fields) -> dict:
    plan.record.update(fields, updated_at=_now())
    write_json(plan.dir / "job.json", plan.record)
    return plan.record


def prepare(
    user_id: str,
    config: Path,
    bucket: str,
    *,
    gpu: str = "RTX4090",
    cloud: str = "vast",
    recipients: list[str] | None = None,
    identity_file=None,
    price_per_hour: float | None = None,
    tokens_per_s: float | None = None,
    spot: bool = False,
    disk_size: int | None = None,
    install: str | None = None,
    image_id: str | None = None,
    keep_checkpoints: int = 2,
    workspace=None,
    dry_run: bool = False,
) -> LaunchPlan:
    """Everything before ``sky jobs launch``: estimate, dataset upload, task YAML, its validation."""

    space = user_space(user_id, workspace)
    if not space.exists():
        raise MailvoiceError(f"no workspace for user {user_id!r}")
    gpu = check_gpu(gpu)
    url = dest_url(bucket)
    so = storage_options(url)
    cfg = load_config(config)
    est = estimate_cost(cfg, space.data, gpu, price_per_hour=price_per_hour, tokens_per_s=tokens_per_s, root=workspace)
    keys = resolve_keys(recipients, identity_file, url, cfg.base_model)
    if keys.missing and not dry_run:
        raise MailvoiceError(f"not set in this environment (SkyPilot secrets, passed by name): {', '.join(keys.missing)}")

    job = job_name(user_id)
    jdir = make_private_dir(space.path / "cloud" / job)
    config_rel = f"configs/{job}.yaml"
    make_private_dir(space.path / "configs")
    shutil.copyfile(config, space.path / config_rel)
    os.chmod(space.path / config_rel, 0o600)

    if dry_run:
        data_backup = "DRY-RUN"
    else:
        # only what training reads: never records.jsonl (raw mail) nor the rest of data/
        res = backup(user_id, url, parts=("data", "configs"), recipients=keys.recipients or None,
                     root=workspace, storage_options=so, data_files=training_files(cfg, space.data))
        data_backup = res.backup_id

    wheel_path = None
    if not install:
        if dry_run:
            wheel_path = str(jdir / "dist" / f"mailvoice-{__version__}-py3-none-any.whl")
        else:
            wheel_path = str(build_wheel(jdir / "dist"))
    envs = {k: os.environ[k] for k in PUBLIC_ENVS if os.environ.get(k)}
    if keys.recipients:
        envs[ENV_RECIPIENTS] = ",".join(keys.recipients)
    spec = TaskSpec(job=job, user_id=user_id, bucket=url, config_rel=config_rel, data_backup=data_backup, gpu=gpu,
                    cloud=cloud, disk_size=disk_size, spot=spot, base_model=cfg.base_model, install=install,
                    wheel_path=wheel_path, image_id=image_id, secrets=keys.secrets, envs=envs,
                    keep_checkpoints=keep_checkpoints)
    task = build_task(spec)
    yaml_path = jdir / "task.yaml"
    yaml_path.write_text(dump_task(task))
    os.chmod(yaml_path, 0o600)
    plan = LaunchPlan(job, user_id, url, jdir, yaml_path, est, task, keys, data_backup, dry_run)
    plan.sky_task = sky.load_task(yaml_path)
    plan.record = {
        "job": job, "user_id": user_id, "created_at": _now(), "bucket": url, "gpu": gpu, "cloud": cloud,
        "spot": spot, "config": str(config), "base_model": cfg.base_model, "data_backup": data_backup,
        "task_yaml": str(yaml_path), "secrets": keys.secrets, "estimate": est.as_dict(),
        "validated_by_skypilot": plan.sky_task is not None, "dry_run": dry_run, "state": "planned",
        "mailvoice": __version__,
    }
    save_record(plan)
    return plan


def submit(plan: LaunchPlan, *, check: bool = True) -> LaunchPlan:
    if plan.dry_run:
        raise MailvoiceError("a dry-run plan cannot be submitted")
    if check:
        sky.check_cloud(plan.record["cloud"])
    plan.job_id = sky.jobs_launch(plan.yaml_path, plan.job, secrets=plan.keys.secrets, env=plan.keys.secret_env)
    save_record(plan, state="launched", job_id=plan.job_id, launched_at=_now())
    return plan


def launch(user_id: str, config: Path, bucket: str, **kw) -> LaunchPlan:
    plan = prepare(user_id, config, bucket, **kw)
    return plan if plan.dry_run else submit(plan)


def read_users_file(path: Path) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise MailvoiceError(f"users file not found: {p}")
    users = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            users.append(validate_user_id(line))
    if not users:
        raise MailvoiceError(f"{p}: no user ids")
    if len(set(users)) != len(users):
        raise MailvoiceError(f"{p}: a user id is listed twice")
    return users


def launch_many(
    user_ids: list[str],
    config: Path,
    bucket: str,
    *,
    max_concurrent: int = 2,
    poll_s: float = 60,
    on_event: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    **kw,
) -> list[LaunchPlan]:
    """One managed job per user, at most ``max_concurrent`` active at once. Each user's dataset is
    uploaded only when its turn comes; returns once the last job is submitted."""
    if max_concurrent < 1:
        raise MailvoiceError("--max-concurrent must be 1 or more")
    plans: list[LaunchPlan] = []
    dry = kw.get("dry_run", False)
    if not dry:  # before anything is uploaded
        sky.sky_executable()
        sky.check_cloud(kw.get("cloud", "vast"))
    for uid in user_ids:
        if not dry:
            while True:
                names = {p.job for p in plans}
                states = sky.job_states(names) if names else {}
                active = [n for n in names if (states.get(n, {}).get("status") or "PENDING") in sky.ACTIVE]
                if len(active) < max_concurrent:
                    break
                on_event(f"{len(active)} jobs active (cap {max_concurrent}): waiting {poll_s:.0f}s before {uid}")
                sleep(poll_s)
        plan = prepare(uid, config, bucket, **kw)
        if not dry:
            submit(plan, check=False)
        plans.append(plan)
        on_event(f"{'planned' if dry else 'launched'} {plan.job} for {uid}: {plan.estimate.line()}")
    return plans


# ------------------------------------------------------------------------------------------ records


def list_records(user_id: str | None = None, workspace=None) -> list[dict]:
    root = resolve_root(workspace)
    users = [user_id] if user_id else sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    out = []
    for uid in users:
        d = root / uid / "cloud"
        for f in sorted(d.glob("*/job.json")) if d.is_dir() else []:
            try:
                out.append(json.loads(f.read_text()))
            except ValueError:
                continue
    return sorted(out, key=lambda r: r.get("created_at", ""))


def find_record(user_id: str, job: str | None, workspace=None, *, launched_only: bool = True) -> dict:
    recs = [r for r in list_records(user_id, workspace) if not launched_only or not r.get("dry_run")]
    if job:
        for r in recs:
            if r.get("job") == job:
                return r
        raise MailvoiceError(f"no cloud job {job!r} for user {user_id!r} in this workspace")
    if not recs:
        raise MailvoiceError(f"no cloud job for user {user_id!r} in this workspace")
    return recs[-1]


def _update_record(rec: dict, workspace=None, **fields) -> None:
    space = user_space(rec["user_id"], workspace)
    rec.update(fields, updated_at=_now())
    write_json(_record_path(space, rec["job"]), rec)


# ------------------------------------------------------------------------------------------ status, fetch, cancel


@dataclass
class JobStatus:
    job: str
    user_id: str
    local_state: str
    sky_status: str | None
    remote: dict | None
    estimate_usd: float | None


def status(user_id: str | None = None, job: str | None = None, workspace=None) -> tuple[list[JobStatus], str | None]:
    """Every launched job (or one): our record, SkyPilot's state, the bucket's status object.
    The second value says why SkyPilot could not be asked, if it could not."""
    recs = [r for r in list_records(user_id, workspace) if not r.get("dry_run")]
    if job:
        recs = [r for r in recs if r.get("job") == job]
    sky_error = None
    states: dict = {}
    if recs:
        try:
            states = sky.job_states({r["job"] for r in recs})
        except MailvoiceError as e:
            sky_error = str(e)
    out = []
    for r in recs:
        try:
            rem = remote.read_status(r["user_id"], r["bucket"], r["job"], storage_options(r["bucket"]))
        except Exception as e:  # storage unreachable: say so, keep going
            rem = {"state": f"unreadable ({type(e).__name__})"}
        out.append(JobStatus(r["job"], r["user_id"], r.get("state", "?"), (states.get(r["job"]) or {}).get("status"),
                             rem, (r.get("estimate") or {}).get("cost_usd")))
    return out, sky_error


@dataclass
class FetchResult:
    job: str
    final_dir: Path
    files: int
    removed: list[str]
    kept: list[str]
    tokens_per_s: float | None


def fetch(
    user_id: str,
    job: str | None = None,
    *,
    identity_file=None,
    passphrase_file=None,
    keep_remote: bool = False,
    delete_remote_model: bool = False,
    bucket: str | None = None,
    workspace=None,
) -> FetchResult:
    """Restore the job's final adapter here; then, per the retention policy, delete the remote
    dataset and checkpoint backups of the job (the final-model backup stays unless
    ``delete_remote_model``; ``keep_remote`` deletes nothing)."""

    if bucket and job:
        rec = {"job": job, "user_id": user_id, "bucket": dest_url(bucket)}
        try:
            rec = find_record(user_id, job, workspace)
        except MailvoiceError:
            pass
    else:
        rec = find_record(user_id, job, workspace)
    job, url = rec["job"], rec["bucket"]
    so = storage_options(url)
    st = remote.read_status(user_id, url, job, so)
    if not st or st.get("state") != "done" or not st.get("final_backup"):
        state = (st or {}).get("state", "not started")
        raise MailvoiceError(f"job {job} has not finished (remote state: {state}); see `mailvoice cloud status`")
    r = restore(user_id, url, backup_id=st["final_backup"], identity_file=identity_file,
                passphrase_file=passphrase_file, root=workspace, storage_options=so)
    space = user_space(user_id, workspace)
    final_dir = space.runs / job / FINAL
    if not (final_dir / ADAPTER_WEIGHTS[0]).is_file():
        raise MailvoiceError(f"the final backup of {job} holds no adapter")
    if st.get("tokens_per_s") and rec.get("gpu"):
        record_throughput(rec["gpu"], st.get("base_model") or rec.get("base_model", ""), float(st["tokens_per_s"]),
                          job, workspace)
    removed: list[str] = []
    kept: list[str] = []
    if not keep_remote:
        data_id = st.get("data_backup") or rec.get("data_backup")
        for b in list_backups(user_id, url, storage_options=so):
            if b.backup_id == data_id:
                remote.remove_backup(user_id, url, b, so)
                removed.append(f"dataset backup {b.backup_id}")
        for ck in remote.job_checkpoints(user_id, url, job, so):
            remote.remove_backup(user_id, url, ck.info, so)
            removed.append(f"checkpoint backup {ck.info.backup_id} (step {ck.step})")
        if delete_remote_model:
            for b in list_backups(user_id, url, storage_options=so):
                if b.backup_id == st["final_backup"]:
                    remote.remove_backup(user_id, url, b, so)
                    removed.append(f"final model backup {b.backup_id}")
            remote.delete_status(user_id, url, job, so)
        else:
            kept.append(f"final model backup {st['final_backup']}")
    else:
        kept.append("every remote backup (--keep-remote)")
    if "state" in rec and "created_at" in rec:
        _update_record(rec, workspace, state="fetched", fetched_at=_now(), final_dir=str(final_dir),
                       remote_removed=removed, result={k: st.get(k) for k in ("steps", "tokens_per_s", "wall_time_s",
                                                                              "final_train_loss", "device")})
    return FetchResult(job, final_dir, r.files, removed, kept, st.get("tokens_per_s"))


def logs(user_id: str, job: str | None = None, *, follow: bool = True, workspace=None) -> int:
    return sky.jobs_logs(find_record(user_id, job, workspace)["job"], follow=follow)


def cancel(user_id: str, job: str | None = None, workspace=None) -> str:
    rec = find_record(user_id, job, workspace)
    sky.jobs_cancel(rec["job"])
    _update_record(rec, workspace, state="cancelled", cancelled_at=_now())
    return rec["job"]


__all__ = [
    "FetchResult", "JobStatus", "LaunchPlan", "cancel", "dest_url", "fetch", "launch", "launch_many", "list_records",
    "logs", "prepare", "read_users_file", "status", "submit",
]
