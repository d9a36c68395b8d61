"""Vault against a real S3-protocol server (moto in server mode; s3fs talks HTTP to it)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("pyrage")
pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

import pyrage  # noqa: E402

from mailvoice.errors import MailvoiceError  # noqa: E402
from mailvoice.vault import (  # noqa: E402
    UnencryptedBackupWarning,
    backup,
    cleanup,
    fingerprint,
    latest_backup,
    list_backups,
    make_checkpoint_hook,
    new_identity,
    restore,
    storage_options,
    verify_backup,
)
from mailvoice.workspace import user_space  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")
BUCKET = "vault-test"


@pytest.fixture(scope="session")
def s3():
    """One moto S3 server for the session; yields (endpoint, boto3 client)."""
    from support.moto_s3 import moto_s3

    with moto_s3(BUCKET) as (endpoint, client):
        yield endpoint, client


@pytest.fixture
def dest(s3, request):
    """A fresh prefix per test, so tests never see each other's backups."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:60]
    return f"s3://{BUCKET}/t-{name}-{os.urandom(3).hex()}"


@pytest.fixture
def key(tmp_path):
    ident = tmp_path / "keys" / "id.txt"
    pub = new_identity(ident)
    return pub, ident


def _populate(root: Path, user: str, marker: str = "", big: int = 0) -> dict[str, bytes]:
    sp = user_space(user, root).ensure()
    files = {
        "data/train.jsonl": (f'{{"text": "hello from {user} {marker}"}}\n' * 50).encode(),
        "data/sub/held_out.jsonl": os.urandom(4096),
        "runs/r1/config.json": b'{"lr": 0.0002}',
        "runs/r1/checkpoint-10/adapter_model.safetensors": os.urandom(200_000),
        "runs/r1/checkpoint-10/trainer_state.json": b"{}",
        "runs/r1/final/adapter_model.safetensors": os.urandom(100_000),
        "models/voice.gguf": os.urandom(50_000),
        "eval/report.json": b'{"score": 1}',
    }
    if big:
        files["runs/r1/checkpoint-20/optimizer.pt"] = os.urandom(big)
    for rel, data in files.items():
        p = sp.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def _snapshot(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _parts(dest: str) -> tuple[str, str]:
    bucket, _, prefix = dest[len("s3://"):].partition("/")
    return bucket, prefix


def _folder_key(dest: str, user: str, folder: str, name: str) -> str:
    return f"{_parts(dest)[1]}/{user}/{folder}/{name}"


def _no_staging_left(root: Path, user: str) -> None:
    assert not list((root / user).glob(".vault-restore-*"))


# --------------------------------------------------------------------------- round trips


def test_roundtrip_byte_identical(tmp_path, dest, key):
    pub, ident = key
    root = tmp_path / "root"
    files = _populate(root, "alice")
    res = backup("alice", dest, recipients=[pub], root=root)
    assert res.encrypted and res.files == len(files)
    m = res.manifest
    assert m["user_id"] == "alice" and m["encrypted"] is True and m["kind"] == "full"
    assert {f["path"] for f in m["files"]} == set(files)
    for f in m["files"]:
        assert f["sha256"] == hashlib.sha256(files[f["path"]]).hexdigest() and f["size"] == len(files[f["path"]])
    assert m["recipients"][0]["fingerprint"] == fingerprint(pub) and pub not in json.dumps(m)
    assert "SECRET" not in json.dumps(m)

    shutil.rmtree(root / "alice")
    out = restore("alice", dest, identity_file=ident, root=root)
    assert out.files == len(files)
    sp = user_space("alice", root)
    got = {k: v for k, v in _snapshot(sp.path).items() if k != "audit.log"}
    assert got == files
    for rel in files:
        assert (sp.path / rel).stat().st_mode & 0o777 == 0o600
    _no_staging_left(root, "alice")
    actions = [json.loads(x)["action"] for x in (sp.path / "audit.log").read_text().splitlines()]
    assert actions == ["restore"]


def test_multipart_upload_for_large_checkpoint(tmp_path, dest, key, s3):
    _, client = s3
    pub, ident = key
    root = tmp_path / "root"
    files = _populate(root, "alice", big=70 * 2**20)
    res = backup("alice", dest, parts=("checkpoints",), recipients=[pub], root=root)
    bucket, _ = _parts(dest)
    head = client.head_object(Bucket=bucket, Key=_folder_key(dest, "alice", res.folder, "archive.tar.age"))
    etag = head["ETag"].strip('"')
    assert "-" in etag and int(etag.rsplit("-", 1)[1]) >= 2, etag  # a multipart upload's ETag
    assert head["ContentLength"] == res.archive_size > 70 * 2**20

    big = "runs/r1/checkpoint-20/optimizer.pt"
    (root / "alice" / big).unlink()
    restore("alice", dest, identity_file=ident, root=root, force=True)
    assert (root / "alice" / big).read_bytes() == files[big]


def test_no_encrypt_roundtrip_warns(tmp_path, dest, s3):
    _, client = s3
    root = tmp_path / "root"
    files = _populate(root, "alice")
    with pytest.warns(UnencryptedBackupWarning):
        res = backup("alice", dest, no_encrypt=True, root=root)
    assert not res.encrypted and res.manifest["archive"]["name"] == "archive.tar"
    bucket, _ = _parts(dest)
    body = client.get_object(Bucket=bucket, Key=_folder_key(dest, "alice", res.folder, "archive.tar"))["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert sorted(tar.getnames()) == sorted([*files, ".mailvoice-manifest.json"])
    shutil.rmtree(root / "alice")
    restore("alice", dest, root=root, allow_plaintext=True)
    assert {k: v for k, v in _snapshot(root / "alice").items() if k != "audit.log"} == files
    assert verify_backup("alice", dest).files_checked == len(files)


def test_passphrase_roundtrip(tmp_path, dest, monkeypatch):
    monkeypatch.setenv("MAILVOICE_BACKUP_PASSPHRASE", "correct horse battery staple")
    root = tmp_path / "root"
    files = _populate(root, "alice")
    res = backup("alice", dest, root=root)
    assert res.manifest["key_object"] == "key.age"
    assert res.manifest["recipients"][0]["type"] == "passphrase"
    shutil.rmtree(root / "alice")
    monkeypatch.setenv("MAILVOICE_BACKUP_PASSPHRASE", "wrong")
    with pytest.raises(MailvoiceError, match="wrong passphrase"):
        restore("alice", dest, root=root)
    pfile = tmp_path / "pass.txt"
    pfile.write_text("correct horse battery staple\n")
    monkeypatch.delenv("MAILVOICE_BACKUP_PASSPHRASE")
    restore("alice", dest, passphrase_file=pfile, root=root)
    assert {k: v for k, v in _snapshot(root / "alice").items() if k != "audit.log"} == files


def test_sse_and_storage_class_are_passed(tmp_path, dest, key, s3):
    _, client = s3
    pub, _ = key
    root = tmp_path / "root"
    _populate(root, "alice")
    opts = storage_options(dest, sse="AES256", storage_class="STANDARD_IA")
    res = backup("alice", dest, recipients=[pub], root=root, storage_options=opts)
    bucket, _ = _parts(dest)
    head = client.head_object(Bucket=bucket, Key=_folder_key(dest, "alice", res.folder, "archive.tar.age"))
    assert head.get("ServerSideEncryption") == "AES256"
    assert head.get("StorageClass") == "STANDARD_IA"


# --------------------------------------------------------------------------- refusals


def _latest_keys(dest, user):
    info = latest_backup(user, dest)
    return info, _folder_key(dest, user, info.folder, "archive.tar.age"), _folder_key(dest, user, info.folder, "manifest.json")


def _assert_nothing_restored(root: Path, user: str) -> None:
    sp = user_space(user, root)
    leftovers = [p for p in sp.path.rglob("*") if p.is_file() and p.name != "audit.log"] if sp.exists() else []
    assert leftovers == []
    if sp.exists():
        _no_staging_left(root, user)


@pytest.mark.parametrize("fix_manifest", [False, True], ids=["manifest-intact", "manifest-forged"])
def test_tampered_ciphertext_refused(tmp_path, dest, key, s3, fix_manifest):
    _, client = s3
    pub, ident = key
    root = tmp_path / "root"
    _populate(root, "alice")
    backup("alice", dest, recipients=[pub], root=root)
    info, akey, mkey = _latest_keys(dest, "alice")
    bucket, _ = _parts(dest)
    body = bytearray(client.get_object(Bucket=bucket, Key=akey)["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=akey, Body=bytes(body))
    if fix_manifest:  # an attacker who rewrites the manifest too is still caught by age's MAC
        m = dict(info.manifest)
        m["archive"] = {**m["archive"], "sha256": hashlib.sha256(body).hexdigest()}
        client.put_object(Bucket=bucket, Key=mkey, Body=json.dumps(m).encode())
    shutil.rmtree(root / "alice")
    with pytest.raises(MailvoiceError, match="tampered|does not match"):
        restore("alice", dest, identity_file=ident, root=root)
    _assert_nothing_restored(root, "alice")
    with pytest.raises(MailvoiceError):
        verify_backup("alice", dest, identity_file=ident)


@pytest.mark.parametrize("fix_manifest", [False, True], ids=["manifest-intact", "manifest-forged"])
def test_truncated_object_refused(tmp_path, dest, key, s3, fix_manifest):
    _, client = s3
    pub, ident = key
    root = tmp_path / "root"
    _populate(root, "alice")
    backup("alice", dest, recipients=[pub], root=root)
    info, akey, mkey = _latest_keys(dest, "alice")
    bucket, _ = _parts(dest)
    body = client.get_object(Bucket=bucket, Key=akey)["Body"].read()
    cut = body[: len(body) * 2 // 3]
    client.put_object(Bucket=bucket, Key=akey, Body=cut)
    if fix_manifest:
        m = dict(info.manifest)
        m["archive"] = {**m["archive"], "size": len(cut), "sha256": hashlib.sha256(cut).hexdigest()}
        client.put_object(Bucket=bucket, Key=mkey, Body=json.dumps(m).encode())
    shutil.rmtree(root / "alice")
    with pytest.raises(MailvoiceError, match="truncated"):
        restore("alice", dest, identity_file=ident, root=root)
    _assert_nothing_restored(root, "alice")


def test_wrong_identity_refused(tmp_path, dest, key):
    pub, _ = key
    root = tmp_path / "root"
    _populate(root, "alice")
    backup("alice", dest, recipients=[pub], root=root)
    other = tmp_path / "other.txt"
    new_identity(other)
    shutil.rmtree(root / "alice")
    with pytest.raises(MailvoiceError, match="wrong key"):
        restore("alice", dest, identity_file=other, root=root)
    _assert_nothing_restored(root, "alice")
    with pytest.raises(MailvoiceError, match="encrypted"):
        restore("alice", dest, root=root)  # no key at all


def _slip_members(kind: str) -> tuple[list, list[dict], dict]:
    from support.vault_forge import file_entry, member

    payload = b"pwned"
    ok = member("data/ok.txt", b"ok")
    name = {"dotdot": "data/../../../evil.txt", "absolute": "/tmp/vault-evil.txt",
            "dotdot-top": "../evil.txt"}.get(kind, "data/evil")
    attrs = {"symlink": {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"},
             "hardlink": {"type": tarfile.LNKTYPE, "linkname": "../../../../etc/passwd"},
             "device": {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}}.get(kind, {})
    evil = member(name, payload if not attrs else b"", **attrs)
    return [ok, evil], [file_entry("data/ok.txt", b"ok")], file_entry(name, payload)


@pytest.mark.parametrize("listed_evil", [False, True], ids=["tar-only", "in-manifest-too"])
@pytest.mark.parametrize("kind", ["dotdot", "dotdot-top", "absolute", "symlink", "hardlink", "device"])
def test_tar_slip_archive_refused(tmp_path, dest, key, s3, kind, listed_evil):
    """Someone holding the recipient PUBLIC key can forge a whole sealed backup: the tar reader
    (and, for listed paths, the manifest schema) must still refuse every unsafe member."""
    from support.vault_forge import forge

    _, client = s3
    pub, ident = key
    root = tmp_path / "root"
    _populate(root, "alice")
    backup("alice", dest, recipients=[pub], root=root)
    info, akey, mkey = _latest_keys(dest, "alice")
    members, listed, evil = _slip_members(kind)
    ct, m = forge(info.manifest, listed + ([evil] if listed_evil else []), members, recipient=pub)
    bucket, _ = _parts(dest)
    client.put_object(Bucket=bucket, Key=akey, Body=ct)
    client.put_object(Bucket=bucket, Key=mkey, Body=json.dumps(m).encode())
    shutil.rmtree(root / "alice")
    with pytest.raises(MailvoiceError, match="unsafe|link|device|refused"):
        restore("alice", dest, identity_file=ident, root=root)
    _assert_nothing_restored(root, "alice")
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    assert not Path("/tmp/vault-evil.txt").exists()


def test_missing_manifest_is_no_complete_backup(tmp_path, dest, s3):
    _, client = s3
    bucket, prefix = _parts(dest)
    client.put_object(Bucket=bucket, Key=f"{prefix}/alice/20260101T000000.000000Z-0123456789ab/archive.tar.age", Body=b"x" * 100)
    with pytest.raises(MailvoiceError, match="no complete backup"):
        latest_backup("alice", dest)
    root = tmp_path / "root"
    with pytest.raises(MailvoiceError, match="no complete backup"):
        restore("alice", dest, root=root)
    assert [i.complete for i in list_backups("alice", dest, include_incomplete=True)] == [False]
    assert list_backups("alice", dest) == []


_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import mailvoice.vault.core as core
    marker = Path(sys.argv[3])
    orig = core._HashingWriter.write
    def slow_write(self, b):
        n = orig(self, b)
        if self.count > 40 * 2**20 and not marker.exists():
            marker.write_text("mid-upload")
            time.sleep(600)
        return n
    core._HashingWriter.write = slow_write
    core.backup("alice", sys.argv[1], recipients=[sys.argv[2]], root=sys.argv[4])
    """
)


@pytest.mark.parametrize("where", ["s3", "local"])
def test_upload_killed_midstream_is_never_latest(tmp_path, dest, key, s3, where):
    endpoint, client = s3
    pub, ident = key
    root = tmp_path / "root"
    if where == "local":
        dest = str(tmp_path / "store")
    _populate(root, "alice", big=70 * 2**20)
    first = backup("alice", dest, parts=("data",), recipients=[pub], root=root)
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "AWS_ENDPOINT_URL": endpoint}
    proc = subprocess.Popen([sys.executable, str(script), dest, pub, str(marker), str(root)], env=env)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert proc.poll() is None, "backup child ended before it was killed"
            assert time.monotonic() < deadline, "backup child never reached mid-upload"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if where == "s3":
        bucket, prefix = _parts(dest)
        ups = client.list_multipart_uploads(Bucket=bucket, Prefix=f"{prefix}/alice/").get("Uploads", [])
        assert ups, "the killed child should have left an unfinished multipart upload"
    else:
        everything = list_backups("alice", dest, include_incomplete=True)
        assert len(everything) == 2 and [i.complete for i in everything].count(False) == 1
    assert latest_backup("alice", dest).backup_id == first.backup_id
    assert [i.backup_id for i in list_backups("alice", dest)] == [first.backup_id]


# --------------------------------------------------------------------------- isolation, verify, cleanup


def test_user_a_backup_holds_nothing_of_user_b(tmp_path, dest, key):
    pub, ident = key
    root = tmp_path / "root"
    a = _populate(root, "alice", marker="ALICE-ONLY")
    b = _populate(root, "bob", marker="BOB-ONLY-7f3e")
    res = backup("alice", dest, recipients=[pub], root=root)
    assert {f["path"] for f in res.manifest["files"]} == set(a)
    info = latest_backup("alice", dest)
    import fsspec

    with fsspec.open(f"{dest}/alice/{info.folder}/archive.tar.age", "rb") as fh:
        plain = pyrage.decrypt(fh.read(), [pyrage.x25519.Identity.from_str(ident.read_text().splitlines()[-1])])
    assert b"BOB-ONLY-7f3e" not in plain
    for data in b.values():
        if len(data) > 1000:
            assert data not in plain
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        assert sorted(tar.getnames()) == sorted([*a, ".mailvoice-manifest.json"])
    assert list_backups("bob", dest) == []


def test_backup_cleanup_flag_deletes_only_this_users_backed_up_data(tmp_path, dest, key):
    pub, _ = key
    root = tmp_path / "root"
    _populate(root, "alice")
    _populate(root, "bob")
    before_b = _snapshot(root / "bob")
    res = backup("alice", dest, recipients=[pub], root=root, cleanup=True)
    sp = user_space("alice", root)
    left = {k for k in _snapshot(sp.path) if k != "audit.log"}
    assert not any(k.startswith("data/") or "/checkpoint-" in k for k in left)
    assert "runs/r1/final/adapter_model.safetensors" in left and "models/voice.gguf" in left
    assert {d["path"] for d in res.deleted} >= {"data/train.jsonl", "runs/r1/checkpoint-10/trainer_state.json"}
    assert _snapshot(root / "bob") == before_b
    log = [json.loads(x) for x in (sp.path / "audit.log").read_text().splitlines()]
    assert [r["action"] for r in log] == ["backup", "delete-after-backup"]


def test_cleanup_of_a_leaves_b_untouched(tmp_path):
    root = tmp_path / "root"
    _populate(root, "alice")
    _populate(root, "bob")
    before = _snapshot(root / "bob")
    plan = cleanup("alice", checkpoint_days=0, root=root)
    assert plan.items and all(not i.path.startswith("..") for i in plan.items)
    assert _snapshot(root / "bob") == before
    assert not (root / "alice" / "data" / "train.jsonl").exists()


def test_verify_backup(tmp_path, dest, key, s3):
    _, client = s3
    pub, ident = key
    root = tmp_path / "root"
    files = _populate(root, "alice")
    res = backup("alice", dest, recipients=[pub], root=root)
    v = verify_backup("alice", dest, res.backup_id)
    assert v.decrypted is False and v.files_checked == 0 and v.archive_sha256 == res.archive_sha256
    v = verify_backup("alice", dest, identity_file=ident)
    assert v.decrypted and v.files_checked == len(files)
    _, akey, _ = _latest_keys(dest, "alice")
    bucket, _ = _parts(dest)
    body = bytearray(client.get_object(Bucket=bucket, Key=akey)["Body"].read())
    body[-5] ^= 0xFF
    client.put_object(Bucket=bucket, Key=akey, Body=bytes(body))
    with pytest.raises(MailvoiceError, match="differently|tampered|does not match"):
        verify_backup("alice", dest)


def test_restore_over_newer_local_data_needs_force(tmp_path, dest, key):
    pub, ident = key
    root = tmp_path / "root"
    files = _populate(root, "alice")
    backup("alice", dest, recipients=[pub], root=root)
    p = root / "alice" / "data" / "train.jsonl"
    p.write_bytes(b"newer local work\n")
    future = time.time() + 3600
    os.utime(p, (future, future))
    with pytest.raises(MailvoiceError, match="--force"):
        restore("alice", dest, identity_file=ident, root=root)
    assert p.read_bytes() == b"newer local work\n"
    res = restore("alice", dest, identity_file=ident, root=root, force=True)
    assert res.replaced == 1 and p.read_bytes() == files["data/train.jsonl"]


def test_checkpoint_hook_uploads_incremental(tmp_path, dest, key):
    pub, ident = key
    root = tmp_path / "root"
    files = _populate(root, "alice")
    full = backup("alice", dest, recipients=[pub], root=root)
    hook = make_checkpoint_hook(dest, "alice", [pub], root=root)
    ck = root / "alice" / "runs" / "r1" / "checkpoint-10"
    hook(ck)
    inc = hook.results[-1]
    assert inc.manifest["kind"] == "incremental" and inc.manifest["parts"] == ["checkpoints"]
    assert {f["path"] for f in inc.manifest["files"]} == {k for k in files if k.startswith("runs/r1/checkpoint-10/")}
    assert latest_backup("alice", dest).backup_id == full.backup_id  # restore's default stays the full one
    assert latest_backup("alice", dest, kind="incremental").backup_id == inc.backup_id
    with pytest.raises(MailvoiceError):
        hook(root / "bob")  # not a checkpoint of this user
    with pytest.raises(MailvoiceError, match="recipient"):
        make_checkpoint_hook(dest, "alice", [], root=root)


def test_age_cli_decrypts_our_backup(tmp_path, dest, key):
    age = shutil.which("age")
    if age is None:
        pytest.skip("the age CLI is not installed (apt-get install -y age)")
    pub, ident = key
    root = tmp_path / "root"
    files = _populate(root, "alice")
    res = backup("alice", dest, recipients=[pub], root=root)
    import fsspec

    enc = tmp_path / "archive.tar.age"
    with fsspec.open(f"{dest}/alice/{res.folder}/archive.tar.age", "rb") as src, open(enc, "wb") as out:
        shutil.copyfileobj(src, out)
    plain = subprocess.run([age, "-d", "-i", str(ident), str(enc)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    seal = json.loads(got.pop(".mailvoice-manifest.json"))  # the sealed manifest, last member
    assert got == files
    assert seal == {**res.manifest, "archive": {"name": "archive.tar.age"}}
