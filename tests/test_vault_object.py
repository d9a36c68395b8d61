"""``Vault(dest, storage_options)``: the one object the CLI and the cloud jobs hold."""

from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("pyrage")

from mailvoice.errors import MailvoiceError  # noqa: E402
from mailvoice.vault import Method, Vault, destination, new_identity  # noqa: E402
from mailvoice.workspace import user_space  # noqa: E402


def _populate(root, user):
    sp = user_space(user, root).ensure()
    files = {"data/train.jsonl": b'{"text": "hi"}\n', "runs/r1/checkpoint-1/adapter.bin": os.urandom(3000)}
    for rel, data in files.items():
        (sp.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (sp.path / rel).write_bytes(data)
    return files


@pytest.mark.parametrize(("bucket", "method", "url"), [
    ("my-bucket", "s3", "s3://my-bucket/mailvoice"),
    ("s3://my-bucket/", Method.s3, "s3://my-bucket/mailvoice"),
    ("s3://my-bucket/team/x", "s3", "s3://my-bucket/team/x"),
    ("/backups/here", "local", "/backups/here"),
    ("s3://my-bucket", "url", "s3://my-bucket"),
])
def test_destination_from_method_and_bucket(bucket, method, url):
    assert destination(bucket, method) == url


def test_destination_errors_are_one_line():
    with pytest.raises(MailvoiceError, match="--bucket is required"):
        destination(None)
    with pytest.raises(MailvoiceError, match="unknown --method 'ftp': use s3, local or url"):
        destination("b", "ftp")


def test_open_sets_s3_options_only_for_s3(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    v = Vault.open("bkt", sse="AES256", storage_class="STANDARD_IA")
    assert v.dest == "s3://bkt/mailvoice"
    assert v.storage_options == {"endpoint_url": "http://127.0.0.1:9", "s3_additional_kwargs": {
        "ServerSideEncryption": "AES256", "StorageClass": "STANDARD_IA"}}
    assert Vault.open("/tmp/x", "local").storage_options is None


def test_user_first_roundtrip_with_recipients_from_env(tmp_path, monkeypatch):
    root, store = tmp_path / "root", tmp_path / "store"
    files = _populate(root, "alice")
    pub = new_identity(tmp_path / "id.txt")
    monkeypatch.setenv("MAILVOICE_AGE_RECIPIENTS", f" {pub} ,")
    vault = Vault(str(store))
    res = vault.backup("alice", root=root)
    assert res.encrypted and [b.backup_id for b in vault.list("alice")] == [res.backup_id]
    assert vault.latest("alice").backup_id == res.backup_id
    assert vault.verify("alice", identity_file=tmp_path / "id.txt").files_checked == len(files)
    shutil.rmtree(root / "alice")
    vault.restore("alice", identity_file=tmp_path / "id.txt", root=root)
    for rel, data in files.items():
        assert (root / "alice" / rel).read_bytes() == data


def test_no_key_is_refused_before_anything_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("MAILVOICE_AGE_RECIPIENTS", raising=False)
    monkeypatch.delenv("MAILVOICE_BACKUP_PASSPHRASE", raising=False)
    with pytest.raises(MailvoiceError, match="no recipient: pass --recipient"):
        Vault(str(tmp_path / "store")).backup("nobody-yet", root=tmp_path / "root")  # no workspace either
    assert not (tmp_path / "store").exists()


def test_prune_keeps_the_newest(tmp_path):
    root, store = tmp_path / "root", tmp_path / "store"
    _populate(root, "alice")
    pub = new_identity(tmp_path / "id.txt")
    vault = Vault(str(store))
    made = [vault.backup("alice", recipients=[pub], root=root).backup_id for _ in range(3)]
    inc = vault.backup("alice", recipients=[pub], root=root, parts=["checkpoints"],
                       paths=[root / "alice" / "runs" / "r1" / "checkpoint-1"])
    gone = vault.prune("alice", 1, kind="full")
    assert [b.backup_id for b in gone] == made[:2]
    assert [b.backup_id for b in vault.list("alice", include_incomplete=True)] == [made[2], inc.backup_id]
    assert sorted(p.name for p in (store / "alice").iterdir()) == sorted(b.folder for b in vault.list("alice"))
    with pytest.raises(MailvoiceError, match="keep must be 0 or more"):
        vault.prune("alice", -1)
    assert [b.backup_id for b in vault.prune("alice", 0, where=lambda b: b.backup_id == inc.backup_id)] == [inc.backup_id]
    assert [b.backup_id for b in vault.list("alice")] == [made[2]]


def test_a_removal_cut_short_leaves_an_incomplete_backup_never_restored(tmp_path, monkeypatch):
    from mailvoice.vault.store import Store

    root, store = tmp_path / "root", tmp_path / "store"
    _populate(root, "alice")
    vault = Vault(str(store))
    res = vault.backup("alice", recipients=[new_identity(tmp_path / "id.txt")], root=root)
    info = vault.latest("alice")

    def cut(self, rel):
        raise OSError("connection lost")

    monkeypatch.setattr(Store, "rm_tree", cut)
    with pytest.raises(OSError):
        vault.remove("alice", info)
    (left,) = vault.list("alice", include_incomplete=True)
    assert left.backup_id == res.backup_id and not left.complete and "no manifest" in left.reason
    with pytest.raises(MailvoiceError, match="no complete backup"):
        vault.latest("alice")
