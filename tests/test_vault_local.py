"""Vault pieces that need no S3 server: keys, local-path destinations, cleanup and retention."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

pytest.importorskip("pyrage")

from mailvoice.errors import MailvoiceError  # noqa: E402
from mailvoice.vault import (  # noqa: E402
    UnencryptedBackupWarning,
    backup,
    cleanup,
    fingerprint,
    latest_backup,
    list_backups,
    new_identity,
    public_key_of,
    restore,
    secure_delete,
    select_files,
    verify_backup,
)
from mailvoice.vault.keys import load_identities, parse_recipients  # noqa: E402
from mailvoice.workspace import user_space  # noqa: E402


def _populate(root: Path, user: str) -> dict[str, bytes]:
    sp = user_space(user, root).ensure()
    files = {
        "data/train.jsonl": b'{"text": "hi"}\n' * 20,
        "runs/r1/config.json": b"{}",
        "runs/r1/checkpoint-1/adapter.bin": os.urandom(10_000),
        "runs/r1/checkpoint-2/adapter.bin": os.urandom(10_000),
        "runs/r1/final/adapter.bin": os.urandom(5_000),
        "models/voice.gguf": os.urandom(5_000),
        "eval/report.json": b"{}",
    }
    for rel, data in files.items():
        p = sp.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def _age(path: Path, days: float) -> None:
    t = time.time() - days * 86400
    for p in [path, *path.rglob("*")]:
        os.utime(p, (t, t))


def test_keys_new_writes_private_identity_and_returns_public(tmp_path):
    ident = tmp_path / "k" / "id.txt"
    pub = new_identity(ident)
    assert pub.startswith("age1") and "SECRET" not in pub
    assert ident.stat().st_mode & 0o777 == 0o600
    text = ident.read_text()
    assert "AGE-SECRET-KEY-1" in text and f"# public key: {pub}" in text
    assert public_key_of(ident) == [pub]
    with pytest.raises(MailvoiceError, match="already exists"):
        new_identity(ident)


def test_secret_key_is_refused_as_recipient_and_never_echoed(tmp_path):
    ident = tmp_path / "id.txt"
    new_identity(ident)
    secret = ident.read_text().splitlines()[-1]
    with pytest.raises(MailvoiceError) as exc:
        parse_recipients([secret])
    assert secret not in str(exc.value)
    with pytest.raises(MailvoiceError) as exc:
        parse_recipients([str(ident)])  # an identity file given as a recipients file
    assert secret not in str(exc.value)


def test_identity_from_env_key_or_path(tmp_path, monkeypatch):
    ident = tmp_path / "id.txt"
    pub = new_identity(ident)
    monkeypatch.setenv("MAILVOICE_AGE_IDENTITY", str(ident))
    assert str(load_identities()[0].to_public()) == pub
    monkeypatch.setenv("MAILVOICE_AGE_IDENTITY", ident.read_text().splitlines()[-1])
    assert str(load_identities()[0].to_public()) == pub
    monkeypatch.delenv("MAILVOICE_AGE_IDENTITY")
    assert load_identities() == []


def test_local_destination_roundtrip_with_two_recipients(tmp_path):
    root, store = tmp_path / "root", tmp_path / "store"
    files = _populate(root, "alice")
    op, rec = tmp_path / "operator.txt", tmp_path / "recovery.txt"
    pubs = [new_identity(op), new_identity(rec)]
    res = backup("alice", str(store), recipients=pubs, root=root)
    # the manifest names recipients by fingerprint only: the public key would let anyone who can
    # write to the storage encrypt a forged archive to it
    assert [r["fingerprint"] for r in res.manifest["recipients"]] == [fingerprint(p) for p in pubs]
    assert not any(p in (store / "alice" / res.folder / "manifest.json").read_text() for p in pubs)
    folder = store / "alice" / res.folder
    assert sorted(p.name for p in folder.iterdir()) == ["archive.tar.age", "manifest.json"]
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "archive.tar.age").stat().st_mode & 0o777 == 0o600
    for ident in (op, rec):  # either key alone restores
        shutil.rmtree(root / "alice")
        restore("alice", str(store), identity_file=ident, root=root)
        for rel, data in files.items():
            assert (root / "alice" / rel).read_bytes() == data
    assert verify_backup("alice", str(store), identity_file=rec).files_checked == len(files)


def test_no_encrypt_local_roundtrip(tmp_path):
    root, store = tmp_path / "root", tmp_path / "store"
    files = _populate(root, "alice")
    with pytest.warns(UnencryptedBackupWarning, match="NOT encrypted"):
        res = backup("alice", str(store), no_encrypt=True, root=root)
    with tarfile.open(store / "alice" / res.folder / "archive.tar") as tar:
        names = tar.getnames()
    assert sorted(names[:-1]) == sorted(files) and names[-1] == ".mailvoice-manifest.json"  # the seal is last
    shutil.rmtree(root / "alice")
    with pytest.raises(MailvoiceError, match="NOT encrypted.*--allow-plaintext"):
        restore("alice", str(store), root=root)  # a plaintext backup is restored only when asked
    assert not (root / "alice" / "data").exists()
    restore("alice", str(store), root=root, allow_plaintext=True)
    for rel, data in files.items():
        assert (root / "alice" / rel).read_bytes() == data


def test_no_recipient_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("MAILVOICE_BACKUP_PASSPHRASE", raising=False)
    root = tmp_path / "root"
    _populate(root, "alice")
    with pytest.raises(MailvoiceError, match="no recipient"):
        backup("alice", str(tmp_path / "store"), root=root)
    assert not (tmp_path / "store").exists()


def test_parts_selection(tmp_path):
    root = tmp_path / "root"
    _populate(root, "alice")
    sp = user_space("alice", root)
    pick = lambda *parts: sorted(e.path for e in select_files(sp, parts))  # noqa: E731
    assert pick("data") == ["data/train.jsonl"]
    assert pick("checkpoints") == ["runs/r1/checkpoint-1/adapter.bin", "runs/r1/checkpoint-2/adapter.bin"]
    assert pick("model") == ["models/voice.gguf", "runs/r1/final/adapter.bin"]
    assert pick("configs") == ["runs/r1/config.json"]
    assert pick("eval") == ["eval/report.json"]
    with pytest.raises(MailvoiceError, match="unknown"):
        pick("everything")


def test_symlink_out_of_user_space_is_not_followed(tmp_path):
    root = tmp_path / "root"
    _populate(root, "alice")
    bob = _populate(root, "bob")
    assert bob
    os.symlink(root / "bob" / "data" / "train.jsonl", root / "alice" / "data" / "bob.jsonl")
    os.symlink(root / "bob" / "data", root / "alice" / "data" / "bobdir")
    paths = [e.path for e in select_files(user_space("alice", root), ["data"])]
    assert paths == ["data/train.jsonl"]


def test_invalid_user_id_refused(tmp_path):
    with pytest.raises(MailvoiceError, match="invalid user id"):
        backup("../bob", str(tmp_path / "s"), no_encrypt=True, root=tmp_path)
    with pytest.raises(MailvoiceError, match="invalid user id"):
        latest_backup("a/b", str(tmp_path / "s"))


def test_cleanup_retention_plan_and_execution(tmp_path):
    root = tmp_path / "root"
    files = _populate(root, "alice")
    sp = user_space("alice", root)
    _age(sp.runs / "r1" / "checkpoint-1", 40)
    plan = cleanup("alice", dry_run=True, checkpoint_days=30, root=root)
    assert plan.dry_run
    assert sorted(plan.paths) == ["data/train.jsonl", "runs/r1/checkpoint-1/adapter.bin"]
    assert plan.total_bytes == len(files["data/train.jsonl"]) + 10_000
    assert "runs/r1/checkpoint-2" in plan.kept and "models" in plan.kept and "runs/r1/final" in plan.kept
    assert all((sp.path / rel).exists() for rel in files)  # dry run deletes nothing
    assert not (sp.path / "audit.log").exists()

    done = cleanup("alice", checkpoint_days=30, root=root)
    assert done.paths == plan.paths
    assert not (sp.data / "train.jsonl").exists() and not (sp.runs / "r1" / "checkpoint-1").exists()
    assert (sp.runs / "r1" / "checkpoint-2" / "adapter.bin").exists()
    assert (sp.runs / "r1" / "final" / "adapter.bin").exists() and (sp.models / "voice.gguf").exists()
    assert sp.data.is_dir()  # the part folder itself stays
    (row,) = [json.loads(x) for x in (sp.path / "audit.log").read_text().splitlines()]
    assert row["action"] == "cleanup" and row["paths"] == 2 and row["bytes"] == plan.total_bytes
    assert set(row) >= {"time", "action", "paths", "bytes"}
    assert "hi" not in (sp.path / "audit.log").read_text()
    assert (sp.path / "audit.log").stat().st_mode & 0o777 == 0o600


def test_cleanup_model_flags(tmp_path):
    root = tmp_path / "root"
    _populate(root, "alice")
    plan = cleanup("alice", dry_run=True, checkpoint_days=0, delete_model=True, root=root)
    assert "models/voice.gguf" in plan.paths and "runs/r1/final/adapter.bin" in plan.paths
    plan = cleanup("alice", keep_model=True, dry_run=True, checkpoint_days=0, delete_model=True, root=root)
    assert plan.paths == ["data/train.jsonl"]  # keep_model keeps every model artefact


def test_secure_delete_overwrites_then_unlinks(tmp_path, monkeypatch):
    p = tmp_path / "secret.bin"
    p.write_bytes(b"S" * 3_000_000)
    seen = []
    real_truncate = os.ftruncate

    def spy(fd, n):  # read the bytes back just before truncation: they must be zeros by now
        seen.append(p.read_bytes())
        real_truncate(fd, n)

    monkeypatch.setattr(os, "ftruncate", spy)
    assert secure_delete(p) == 3_000_000
    assert not p.exists() and seen and set(seen[0]) == {0}

    q, link = tmp_path / "shared.bin", tmp_path / "other-name.bin"
    q.write_bytes(b"keep me")
    os.link(q, link)
    secure_delete(q)  # a second name shares the blocks: unlink only
    assert link.read_bytes() == b"keep me"


def test_incomplete_local_backup_is_listed_but_never_latest(tmp_path):
    root, store = tmp_path / "root", tmp_path / "store"
    _populate(root, "alice")
    with pytest.warns(UnencryptedBackupWarning):
        first = backup("alice", str(store), no_encrypt=True, root=root)
    with pytest.warns(UnencryptedBackupWarning):
        second = backup("alice", str(store), no_encrypt=True, root=root)
    (store / "alice" / second.folder / "manifest.json").unlink()
    assert latest_backup("alice", str(store)).backup_id == first.backup_id
    (store / "alice" / first.folder / "manifest.json").write_text("{not json")
    with pytest.raises(MailvoiceError, match="no complete backup"):
        latest_backup("alice", str(store))
    assert len(list_backups("alice", str(store), include_incomplete=True)) == 2


def test_unsafe_tar_is_refused_by_reader_without_writing(tmp_path):
    from mailvoice.vault.tarstream import read_archive

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ti = tarfile.TarInfo("data/../../x")
        ti.size = 1
        tar.addfile(ti, io.BytesIO(b"x"))
    buf.seek(0)
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(MailvoiceError):
        read_archive(buf, {}, staging)
    assert list(staging.iterdir()) == [] and not (tmp_path / "x").exists()


def test_records_stay_out_of_backups_unless_asked(tmp_path):
    """records.jsonl holds raw mail (cards, SSNs, passwords as received) and imap-state.json only
    makes sense beside it: neither is backed up unless include_records=True."""
    root, store = tmp_path / "root", tmp_path / "store"
    _populate(root, "alice")
    sp = user_space("alice", root)
    (sp.data / "records.jsonl").write_text('{"body": "ssn 536-22-8421"}\n')
    (sp.data / "imap-state.json").write_text("{}")
    pub = new_identity(tmp_path / "id.txt")
    res = backup("alice", str(store), parts=["data"], recipients=[pub], root=root, cleanup=True)
    assert {f["path"] for f in res.manifest["files"]} == {"data/train.jsonl"}
    # --cleanup deletes only what the backup holds: the records stay (and are not lost)
    assert (sp.data / "records.jsonl").exists() and not (sp.data / "train.jsonl").exists()
    res = backup("alice", str(store), parts=["data"], recipients=[pub], root=root, include_records=True)
    assert {f["path"] for f in res.manifest["files"]} == {"data/records.jsonl", "data/imap-state.json"}
    paths = lambda **kw: {e.path for e in select_files(sp, ["data"], **kw)}  # noqa: E731
    assert paths(data_files=["records.jsonl"]) == set()  # asking for it by name is not enough
    assert paths(data_files=["records.jsonl"], include_records=True) == {"data/records.jsonl"}
    with pytest.raises(MailvoiceError, match="not found"):
        paths(data_files=["val_chat.jsonl"])
    with pytest.raises(MailvoiceError, match="inside this user's data folder"):
        paths(data_files=["../../bob/data/train.jsonl"])


def test_cli_backup_include_records(tmp_path):
    import subprocess
    import sys

    root, store = tmp_path / "root", tmp_path / "store"
    _populate(root, "alice")
    (root / "alice" / "data" / "records.jsonl").write_text("{}\n")
    pub = new_identity(tmp_path / "id.txt")
    env = {**os.environ, "MAILVOICE_HOME": str(root), "MAILVOICE_NO_PROGRESS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    base = [sys.executable, "-m", "mailvoice", "backup", "--user-id", "alice", "--method", "local",
            "--bucket", str(store), "--recipient", pub, "--part", "data"]
    for extra, want in (([], False), (["--include-records"], True)):
        r = subprocess.run(base + extra, capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        newest = list_backups("alice", str(store))[-1]
        assert ("data/records.jsonl" in {f["path"] for f in newest.manifest["files"]}) is want


def test_cli_vault_verbs_and_their_old_names(tmp_path):
    """`backups` and `verify` are top level; the old `backup list` / `backup verify` still run, hidden,
    with the same output and a one-line note on stderr. The guide's shim still makes a backup."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    root, store = tmp_path / "root", tmp_path / "store"
    _populate(root, "alice")
    pub = new_identity(tmp_path / "id.txt")
    env = {**os.environ, "MAILVOICE_HOME": str(root), "MAILVOICE_NO_PROGRESS": "1", "PYTHONPATH": str(repo / "src"),
           "MAILVOICE_PYTHON": sys.executable}
    where = ["--user-id", "alice", "--method", "local", "--bucket", str(store)]

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "mailvoice", *args], capture_output=True, text=True, env=env,
                              timeout=120)

    shim = subprocess.run(["bash", str(repo / "scripts" / "backup-training-data.sh"), *where, "--recipient", pub,
                           "--part", "data"], capture_output=True, text=True, env=env, timeout=120, cwd=repo)
    assert shim.returncode == 0, shim.stderr
    (b,) = list_backups("alice", str(store))

    new, old = cli("backups", *where), cli("backup", "list", *where)
    assert new.returncode == 0 and old.returncode == 0, new.stderr + old.stderr
    assert new.stdout.startswith(b.backup_id) and "complete" in new.stdout and new.stdout == old.stdout
    assert "note:" not in new.stderr
    assert old.stderr.strip() == "note: `mailvoice backup list` is now `mailvoice backups`; the old name still works for now"

    key = ["--identity", str(tmp_path / "id.txt")]
    new, old = cli("verify", *where, *key), cli("backup", "verify", *where, *key)
    assert new.returncode == 0 and old.returncode == 0, new.stderr + old.stderr
    assert f"ok backup {b.backup_id}" in new.stdout and "decrypted" in new.stdout
    assert new.stdout == old.stdout and "`mailvoice verify`" in old.stderr

    top = cli("--help").stdout
    assert all(f" {v} " in top for v in ("backup", "backups", "verify", "restore", "cleanup"))
    sub = cli("backup", "--help").stdout
    assert "list" not in sub.split("Options")[0] and "COMMAND" not in sub  # the old subcommands stay hidden
