"""The run step of a cloud job, on the GPU host: ``python -m mailvoice.cloud.onhost …``.

    python -m mailvoice.cloud.onhost --user-id ID --bucket URL --job NAME --data-backup BID \
        --config configs/NAME.yaml [--workspace DIR] [--keep-checkpoints 2]

1. restore the dataset (and the job's config) from the encrypted full backup ``--data-backup``;
2. restore this job's newest checkpoint backup, if any (a re-provisioned host after a
   preemption: SkyPilot restarts the command from the beginning, the state is in the bucket);
3. train with ``--resume-from-checkpoint auto`` semantics, every checkpoint uploaded encrypted
   (vault incremental backup) and older ones of this job pruned;
4. upload ``runs/NAME/final`` (adapter + training_summary.json) as a full backup and mark the
   job ``done`` in ``<bucket>/<user>/cloud/NAME.json``.

Run again after it finished, it does nothing. Stopped by SIGTERM/SIGINT (the checkpoint is
uploaded first), it exits 75 so SkyPilot's ``recover_on_exit_codes`` restarts it.

Keys come from the environment only (SkyPilot secrets): ``$MAILVOICE_AGE_IDENTITY`` (the age
secret key that decrypts the dataset), ``$MAILVOICE_AGE_RECIPIENTS`` (public keys the
checkpoints and the adapter are encrypted to) or ``$MAILVOICE_BACKUP_PASSPHRASE``; bucket
credentials as the storage library reads them (``AWS_*``).

Test only: ``$MAILVOICE_TEST_KILL_AT_STEP=N`` makes the process SIGKILL itself at the end of
optimizer step N (the crash tests use it; never set it anywhere else).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from ..errors import MailvoiceError
from ..train.config import load_config
from ..train.run import find_checkpoint, train
from ..vault import backup, list_backups, make_checkpoint_hook, restore, storage_options
from ..vault.keys import ENV_RECIPIENTS
from ..workspace import user_space
from . import remote

# heavy: transformers and torch are imported when training starts on the host.

EXIT_RETRY = 75  # EX_TEMPFAIL: stopped cleanly, state uploaded; SkyPilot restarts the job on it
ENV_TEST_KILL = "MAILVOICE_TEST_KILL_AT_STEP"


def _say(msg: str) -> None:
    print(f"[mailvoice onhost] {msg}", flush=True)


def _test_callbacks() -> list:
    at = os.environ.get(ENV_TEST_KILL)
    if not at:
        return []
    from transformers import TrainerCallback

    step = int(at)

    class _KillAt(TrainerCallback):  # test only: a host dying mid-run, no cleanup at all
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == step:
                os.kill(os.getpid(), signal.SIGKILL)

    return [_KillAt()]


def _gpu_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:
        return "unknown"


def _pick_data_backup(user_id: str, bucket: str, so, backup_id: str | None) -> str:
    full = [b for b in list_backups(user_id, bucket, storage_options=so)
            if b.kind == "full" and "data" in (b.manifest or {}).get("parts", [])]
    if backup_id:
        for b in full:
            if backup_id in (b.backup_id, b.folder):
                return b.backup_id
        raise MailvoiceError(f"dataset backup {backup_id} not found (or incomplete) for user {user_id!r}")
    if not full:
        raise MailvoiceError(f"no dataset backup for user {user_id!r} in the bucket")
    return full[-1].backup_id


def run(
    user_id: str,
    bucket: str,
    job: str,
    config: str,
    *,
    data_backup: str | None = None,
    workspace: str | os.PathLike | None = None,
    keep_checkpoints: int = 2,
) -> int:

    so = storage_options(bucket)
    space = user_space(user_id, workspace).ensure()
    run_dir = space.runs / job
    status = remote.read_status(user_id, bucket, job, so) or {}
    if status.get("state") == "done" and status.get("final_backup"):
        _say(f"job {job} already finished (final backup {status['final_backup']}): nothing to do")
        return 0
    recipients = [r for r in os.environ.get(ENV_RECIPIENTS, "").split(",") if r.strip()] or None

    # 1. the dataset and this job's config
    remote.write_status(user_id, bucket, job, so, state="restoring", gpu=_gpu_name())
    bid = _pick_data_backup(user_id, bucket, so, data_backup)
    r = restore(user_id, bucket, backup_id=bid, root=workspace, storage_options=so)
    _say(f"restored dataset backup {bid}: {r.files} files")

    # 2. the newest checkpoint of this job, if the bucket has a newer one than this disk
    local = find_checkpoint(run_dir) if run_dir.is_dir() else None
    local_step = int(local.name.split("-")[-1]) if local else -1
    for ck in reversed(remote.job_checkpoints(user_id, bucket, job, so)):
        if ck.step <= local_step:
            break
        try:
            restore(user_id, bucket, backup_id=ck.info.backup_id, force=True, root=workspace, storage_options=so)
        except MailvoiceError as exc:  # a damaged newest one: fall back to the one before
            _say(f"checkpoint backup {ck.info.backup_id} (step {ck.step}) unusable: {exc}")
            continue
        _say(f"restored checkpoint step {ck.step} (backup {ck.info.backup_id})")
        break

    # 3. train, uploading every checkpoint
    cfg_path = Path(config)
    if not cfg_path.is_absolute() and not cfg_path.is_file():
        cfg_path = space.path / config
    cfg = load_config(cfg_path)
    upload = make_checkpoint_hook(bucket, user_id, recipients, root=workspace, storage_options=so)

    def on_checkpoint(ckpt: Path) -> None:
        upload(ckpt)
        res = upload.results[-1]
        step = int(Path(ckpt).name.split("-")[-1])
        pruned = remote.prune_checkpoints(user_id, bucket, job, keep_checkpoints, so)
        remote.write_status(user_id, bucket, job, so, state="training",
                            last_checkpoint={"step": step, "backup_id": res.backup_id})
        _say(f"checkpoint step {step} uploaded (backup {res.backup_id}{f', pruned {pruned} older' if pruned else ''})")

    remote.write_status(user_id, bucket, job, so, state="training", data_backup=bid)
    result = train(cfg, data_dir=space.data, run_dir=run_dir, resume="auto", on_checkpoint=on_checkpoint,
                   notice=_say, callbacks=_test_callbacks())
    s = result.summary
    if s.get("stopped_by"):
        remote.write_status(user_id, bucket, job, so, state="stopped", stopped_by=s["stopped_by"], steps=s["steps"])
        _say(f"stopped by {s['stopped_by']} at step {s['steps']}; the checkpoint is uploaded, a restart resumes")
        return EXIT_RETRY

    # 4. the adapter and its summary, encrypted; then the job is done
    remote.write_status(user_id, bucket, job, so, state="uploading", steps=s["steps"])
    fin = backup(user_id, bucket, parts=("model",), recipients=recipients, root=workspace, storage_options=so)
    remote.write_status(
        user_id, bucket, job, so, state="done", final_backup=fin.backup_id, steps=s["steps"],
        tokens_per_s=s.get("tokens_per_s"), wall_time_s=s.get("wall_time_s"), device=s.get("device"),
        final_train_loss=s.get("final_train_loss"), base_model=s.get("base_model"),
    )
    _say(f"done: {s['steps']} steps, final adapter uploaded (backup {fin.backup_id})")
    print(json.dumps({"job": job, "steps": s["steps"], "final_backup": fin.backup_id}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)
    ap = argparse.ArgumentParser(prog="python -m mailvoice.cloud.onhost", description=__doc__.split("\n\n")[0])
    ap.add_argument("--user-id", required=True)
    ap.add_argument("--bucket", required=True, help="where the vault backups live (s3://bucket/prefix, any fsspec URL)")
    ap.add_argument("--job", required=True, help="job name = run folder runs/<job>/ and the checkpoint scope")
    ap.add_argument("--config", required=True, help="training config; relative paths are looked up in the user space")
    ap.add_argument("--data-backup", default=None, help="backup id of the dataset (default: newest with data)")
    ap.add_argument("--workspace", default=None, help="workspace root (default $MAILVOICE_HOME or ./mailvoice-data)")
    ap.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoint backups of this job kept in the bucket")
    a = ap.parse_args(argv)
    try:
        return run(a.user_id, a.bucket, a.job, a.config, data_backup=a.data_backup, workspace=a.workspace,
                   keep_checkpoints=a.keep_checkpoints)
    except MailvoiceError as e:
        try:
            remote.write_status(a.user_id, a.bucket, a.job, storage_options(a.bucket), state="failed", error=str(e))
        except Exception:
            pass
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
