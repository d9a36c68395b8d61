"""The guide's backup/restore/cleanup through the CLI and its shell shims, on a local store."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sh(script, *args, env):
    return subprocess.run(["bash", str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_keys_backup_restore_cleanup_round_trip(tmp_path):
    ws = tmp_path / "ws"
    data = ws / "dana" / "data"
    data.mkdir(parents=True)
    (data / "train_chat.jsonl").write_text('{"secret mail": "Hi Sam! Cheers, Dana"}\n')
    (ws / "dana" / "runs" / "r1" / "final").mkdir(parents=True)
    (ws / "dana" / "runs" / "r1" / "final" / "adapter_model.safetensors").write_bytes(os.urandom(4096))
    env = {**os.environ, "MAILVOICE_HOME": str(ws), "MAILVOICE_NO_PROGRESS": "1", "PYTHONPATH": str(ROOT / "src")}
    ident = tmp_path / "key.txt"

    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "mailvoice", "keys", "new", "--identity", str(ident)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    secret = next(l for l in ident.read_text().splitlines() if l.startswith("AGE-SECRET-KEY"))
    assert secret not in r.stdout + r.stderr
    pub = r.stdout.split("recipient:")[1].split()[0]
    assert pub.startswith("age1")

    store = tmp_path / "store"
    r = sh("backup-training-data.sh", "--method", "local", "--bucket", str(store), "--user-id", "dana",
           "--recipient", pub, env=env)
    assert r.returncode == 0, r.stderr
    assert "Hi Sam" not in r.stdout + r.stderr
    stored = b"".join(p.read_bytes() for p in store.rglob("*") if p.is_file())
    assert b"Hi Sam" not in stored  # encrypted at rest

    original = (data / "train_chat.jsonl").read_bytes()
    r = sh("cleanup-sensitive-data.sh", "--user-id", "dana", "--keep-model", env=env)
    assert r.returncode == 0, r.stderr
    assert not (data / "train_chat.jsonl").exists()
    assert (ws / "dana" / "runs" / "r1" / "final" / "adapter_model.safetensors").exists()

    env_r = {**env, "MAILVOICE_AGE_IDENTITY_FILE": str(ident)}
    r = sh("restore-training-data.sh", "--method", "local", "--bucket", str(store), "--user-id", "dana", env=env_r)
    assert r.returncode == 0, r.stderr
    assert (data / "train_chat.jsonl").read_bytes() == original


def test_backup_without_a_recipient_is_refused(tmp_path):
    env = {**os.environ, "MAILVOICE_HOME": str(tmp_path / "ws"), "PYTHONPATH": str(ROOT / "src")}
    env.pop("MAILVOICE_BACKUP_PASSPHRASE", None)
    env.pop("MAILVOICE_AGE_RECIPIENTS", None)
    (tmp_path / "ws" / "dana" / "data").mkdir(parents=True)
    r = sh("backup-training-data.sh", "--method", "local", "--bucket", str(tmp_path / "s"), "--user-id", "dana", env=env)
    assert r.returncode == 1 and r.stderr.strip().startswith("error: no recipient")
    assert not (tmp_path / "s").exists()


def test_train_backup_to_uploads_every_checkpoint_encrypted(tmp_path, tiny_model):

    from mailvoice.vault import list_backups, new_identity
    from test_train_tiny import _write_data

    ws = tmp_path / "ws"
    _write_data(ws / "dana" / "data")
    pub = new_identity(tmp_path / "id.txt")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"base_model: {tiny_model}\nmax_steps: 4\nsave_steps: 2\nper_device_train_batch_size: 2\nreport_to: []\n")
    env = {**os.environ, "MAILVOICE_HOME": str(ws), "MAILVOICE_NO_PROGRESS": "1", "PYTHONPATH": str(ROOT / "src")}
    store = tmp_path / "store"
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "mailvoice", "train", "--config", str(cfg),
                        "--user-id", "dana", "--backup-to", str(store), "--recipient", pub],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    backups = list_backups("dana", str(store))
    assert len(backups) == 2 and all(b.kind == "incremental" for b in backups)
    names = {f["path"] for b in backups for f in b.manifest["files"]}
    assert any("checkpoint-2" in n for n in names) and any("checkpoint-4" in n for n in names)
    assert not any("train_chat" in n for n in names)
