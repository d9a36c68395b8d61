"""Forged backups (issue 15, item 2): someone who can write to the backup storage rewrites a
manifest or plants an archive. One test per forgery; each restore must refuse with one clear
line and leave the user's space as it was. The storage is a local folder: the attacker's access
(write any object under the prefix) is the same as on S3, which test_vault_s3 covers."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pyrage = pytest.importorskip("pyrage")

from support.vault_forge import build_tar, file_entry, forge, member  # noqa: E402

from mailvoice.errors import MailvoiceError  # noqa: E402
from mailvoice.vault import backup, latest_backup, list_backups, new_identity, restore, verify_backup  # noqa: E402
from mailvoice.vault.manifest import sealed_view  # noqa: E402
from mailvoice.vault.tarstream import SEAL_MEMBER, read_archive  # noqa: E402
from mailvoice.workspace import user_space  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLANTED = b'{"id": "planted", "body": "send the wire to account 000123"}\n'


@pytest.fixture
def vault(tmp_path):
    """alice (and bob) with one genuine encrypted backup each, to the same operator key."""
    root, store = tmp_path / "root", tmp_path / "store"
    ident = tmp_path / "id.txt"
    pub = new_identity(ident)
    for user in ("alice", "bob"):
        sp = user_space(user, root).ensure()
        (sp.data / "train_chat.jsonl").write_bytes(f'{{"text": "{user} writes"}}\n'.encode() * 20)
        (sp.runs / "r1" / "final").mkdir(parents=True)
        (sp.runs / "r1" / "final" / "adapter.bin").write_bytes(os.urandom(3000))
        backup(user, str(store), recipients=[pub], root=root)
    shutil.rmtree(root / "alice")

    class V:
        pass

    v = V()
    v.root, v.store, v.ident, v.pub = root, store, ident, pub
    v.info = latest_backup("alice", str(store))
    v.folder = store / "alice" / v.info.folder
    return v


def _write_manifest(folder: Path, m: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(m))


def _nothing_restored(v) -> None:
    sp = v.root / "alice"
    left = [p for p in sp.rglob("*") if p.is_file() and p.name != "audit.log"] if sp.exists() else []
    assert left == []
    assert not list(sp.glob(".vault-restore-*")) if sp.exists() else True


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# --------------------------------------------------------------------------- encrypted: false


@pytest.mark.parametrize("how", ["new-folder", "same-folder", "legacy-format"])
def test_planted_plaintext_is_refused_without_the_flag(vault, how):
    """A manifest saying ``encrypted: false`` over a planted plain tar (before: restored with no
    key, and prepare then merged the planted records.jsonl). ``legacy-format``: an encrypted
    archive under a format-1 manifest, which has no seal."""
    base = dict(vault.info.manifest)
    folder = vault.folder
    if how == "new-folder":  # a newer folder, so that it is "latest"
        name = "29991231T000000.000000Z-0123456789ab"
        folder = vault.store / "alice" / name
        folder.mkdir()
        base.update(folder=name, backup_id="0123456789ab")
    files = [file_entry("data/records.jsonl", PLANTED)]
    members = [member("data/records.jsonl", PLANTED)]
    if how == "legacy-format":
        body, m = forge(base, files, members, recipient=vault.pub, seal=False, format="mailvoice-vault/1")
        (folder / "archive.tar.age").write_bytes(body)
    else:
        base.update(encrypted=False, key_object=None, recipients=[], archive={"name": "archive.tar"})
        body, m = forge(base, files, members)
        (folder / "archive.tar").write_bytes(body)
    _write_manifest(folder, m)

    with pytest.raises(MailvoiceError) as exc:
        restore("alice", str(vault.store), identity_file=vault.ident, root=vault.root)
    assert "--allow-plaintext" in _one_line(exc)
    _nothing_restored(vault)
    # the owner who made such a backup can still get it back, by saying so
    restore("alice", str(vault.store), identity_file=vault.ident, root=vault.root, allow_plaintext=True)
    assert (vault.root / "alice" / "data" / "records.jsonl").read_bytes() == PLANTED


# --------------------------------------------------------------------------- another user's objects


@pytest.mark.parametrize("field", ["archive", "key_object"])
def test_archive_name_cannot_leave_the_backup_folder(vault, field):
    """``archive.name`` = ``../../bob/<folder>/archive.tar.age`` (before: bob's backup, encrypted
    to the same operator key, was restored into alice's space)."""
    bob = latest_backup("bob", str(vault.store))
    m = json.loads(json.dumps(vault.info.manifest))
    evil = f"../../bob/{bob.folder}/archive.tar.age"
    if field == "archive":
        m["archive"] = dict(bob.manifest["archive"], name=evil)
        m["files"], m["totals"] = bob.manifest["files"], bob.manifest["totals"]
    else:
        m["key_object"] = evil
    _write_manifest(vault.folder, m)
    with pytest.raises(MailvoiceError) as exc:
        restore("alice", str(vault.store), identity_file=vault.ident, root=vault.root, backup_id=vault.info.backup_id)
    assert f"invalid manifest: {field}" in _one_line(exc)
    _nothing_restored(vault)


def test_another_users_backup_copied_into_this_prefix_is_refused(vault):
    """bob's whole backup folder copied under alice, its manifest in clear rewritten to say alice:
    the copy sealed inside bob's archive still says bob."""
    bob = latest_backup("bob", str(vault.store))
    name = "29991231T000000.000000Z-0123456789ab"
    dst = vault.store / "alice" / name
    shutil.copytree(vault.store / "bob" / bob.folder, dst)
    m = dict(bob.manifest, user_id="alice", folder=name, backup_id="0123456789ab")
    _write_manifest(dst, m)
    with pytest.raises(MailvoiceError) as exc:
        restore("alice", str(vault.store), identity_file=vault.ident, root=vault.root)
    assert "sealed" in _one_line(exc)
    _nothing_restored(vault)


# --------------------------------------------------------------------------- sparse and oversize


def _gnu_sparse_member(name: str, real_size: int, data: bytes) -> bytes:
    """A GNU sparse member ('S'): ``data`` stored, declared to expand to ``real_size`` bytes (the
    old GNU format, as GNU tar writes it; tarfile reads it but cannot write it)."""
    ti = tarfile.TarInfo(name)
    ti.size, ti.type = len(data), tarfile.GNUTYPE_SPARSE
    hdr = bytearray(ti.tobuf(tarfile.GNU_FORMAT))
    # sparse map at 386: (offset, numbytes) pairs of 12-byte octal fields; isextended at 482;
    # the expanded size at 483
    hdr[386:398] = tarfile.itn(real_size - len(data), 12, tarfile.GNU_FORMAT)
    hdr[398:410] = tarfile.itn(len(data), 12, tarfile.GNU_FORMAT)
    hdr[482] = 0
    hdr[483:495] = tarfile.itn(real_size, 12, tarfile.GNU_FORMAT)
    hdr[148:155] = b"%06o\0" % tarfile.calc_chksums(bytes(hdr))[0]
    pad = (-len(data)) % tarfile.BLOCKSIZE
    return bytes(hdr) + data + b"\0" * pad


def _sparse_tar() -> tuple[bytes, int]:
    real = 100 * 2**20
    body = _gnu_sparse_member("data/big.bin", real, b"x" * 1800) + b"\0" * 1024
    return body, real


def test_sparse_member_is_refused_by_the_reader(tmp_path):
    """2.3 KB of tar that would write a 100 MiB file (before: written, since its size matched)."""
    body, real = _sparse_tar()
    assert len(body) < 4096
    with tarfile.open(fileobj=io.BytesIO(body), mode="r|") as tar:  # it is what it claims
        (m,) = list(tar)
        assert m.issparse() and m.size == real
    staging = tmp_path / "staging"
    staging.mkdir()
    want = {"data/big.bin": {"size": real, "sha256": "0" * 64}}
    with pytest.raises(MailvoiceError, match="sparse"):
        read_archive(io.BytesIO(body), want, staging)
    assert list(staging.rglob("*")) == []


def test_sparse_or_oversize_manifest_is_refused_before_reading(vault):
    """A plaintext backup (allowed by the owner) whose manifest lists a 100 MiB file in a 2.3 KB
    archive: refused by the schema, nothing downloaded into the user's space."""
    body, real = _sparse_tar()
    base = dict(vault.info.manifest, encrypted=False, key_object=None, recipients=[], archive={"name": "archive.tar"})
    files = [{"path": "data/big.bin", "part": "data", "size": real,
              "sha256": hashlib.sha256(b"\0" * (real - 1800) + b"x" * 1800).hexdigest(), "mtime": 0.0}]
    m = dict(base, files=files, totals={"files": 1, "bytes": real},
             archive={"name": "archive.tar", "size": len(body), "sha256": hashlib.sha256(body).hexdigest()})
    (vault.folder / "archive.tar").write_bytes(body)
    _write_manifest(vault.folder, m)
    with pytest.raises(MailvoiceError) as exc:
        restore("alice", str(vault.store), root=vault.root, backup_id=vault.info.backup_id, allow_plaintext=True)
    assert "oversize" in _one_line(exc)
    _nothing_restored(vault)


# --------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    "edit, where",
    [
        (lambda m: m.pop("files"), "files: Field required"),
        (lambda m: m.update(encrypted="yes"), "encrypted: Input should be a valid boolean"),
        (lambda m: m["files"][0].update(size="12"), "files.0.size: Input should be a valid integer"),
        (lambda m: m["files"][0].update(mtime=float("nan")), "files.0.mtime"),
        (lambda m: m["archive"].pop("sha256"), "archive.sha256: Field required"),
        (lambda m: m.update(parts="data"), "parts: Input should be a valid list"),
        (lambda m: m.update({"\x1b]52;c;evil\x07": 1}), "Extra inputs are not permitted"),
        (lambda m: m.clear() or m.update(x=[[[[]]]]), "format: Field required"),
    ],
    ids=["missing-files", "encrypted-str", "size-str", "mtime-nan", "missing-sha", "parts-str", "escape-key", "junk"],
)
def test_missing_or_mistyped_field_is_one_line(vault, edit, where):
    m = json.loads(json.dumps(vault.info.manifest))
    edit(m)
    _write_manifest(vault.folder, m)
    with pytest.raises(MailvoiceError) as exc:
        restore("alice", str(vault.store), identity_file=vault.ident, root=vault.root, backup_id=vault.info.backup_id)
    text = _one_line(exc)
    assert "invalid manifest" in text and where in text and "\x1b" not in text
    with pytest.raises(MailvoiceError) as exc:  # "latest" says why the newest one was passed over
        restore("alice", str(vault.store), identity_file=vault.ident, root=vault.root)
    assert "invalid manifest" in _one_line(exc)
    (info,) = list_backups("alice", str(vault.store), include_incomplete=True)
    assert not info.complete and info.reason.startswith("invalid manifest")
    _nothing_restored(vault)


# --------------------------------------------------------------------------- modified digests and fields


@pytest.mark.parametrize("edit", ["archive-sha256", "file-sha256", "created_ts", "file-mtime", "kind"])
def test_modified_manifest_is_refused(vault, edit):
    """Rewrites that keep the schema happy. A changed digest no longer matches the bytes; a
    changed ``created_ts`` (to slip past the --force check), mtime or kind matches nothing in
    the archive, but differs from the manifest sealed inside it."""
    m = json.loads(json.dumps(vault.info.manifest))
    if edit == "archive-sha256":
        m["archive"]["sha256"] = hashlib.sha256(b"other").hexdigest()
    elif edit == "file-sha256":
        m["files"][0]["sha256"] = hashlib.sha256(PLANTED).hexdigest()
    elif edit == "created_ts":
        m["created_ts"] += 10 * 365 * 86400
    elif edit == "file-mtime":
        m["files"][0]["mtime"] = 0.0
    else:
        m["kind"] = "incremental"
    _write_manifest(vault.folder, m)
    with pytest.raises(MailvoiceError) as exc:
        restore("alice", str(vault.store), identity_file=vault.ident, root=vault.root, backup_id=vault.info.backup_id)
    assert any(w in _one_line(exc) for w in ("does not match", "sealed"))
    _nothing_restored(vault)
    with pytest.raises(MailvoiceError):
        verify_backup("alice", str(vault.store), vault.info.backup_id, identity_file=vault.ident)


def test_genuine_backup_verifies_as_sealed(vault):
    r = verify_backup("alice", str(vault.store), identity_file=vault.ident)
    assert r.decrypted and r.sealed and r.files_checked == 2
    assert not verify_backup("alice", str(vault.store)).sealed  # without the key: digests only


def test_members_after_the_seal_are_refused(vault):
    """Someone with the public key appends a file after the sealed copy: refused."""
    m = json.loads(json.dumps(vault.info.manifest))
    a = member("data/a.jsonl", b"a")
    _, m = forge(m, [file_entry("data/a.jsonl", b"a")], [a], recipient=vault.pub)
    seal = member(SEAL_MEMBER, json.dumps(sealed_view(m)).encode())
    plain = build_tar([member("data/a.jsonl", b"a"), seal, member("data/b.jsonl", b"b")])
    body = pyrage.encrypt(plain, [pyrage.x25519.Recipient.from_str(vault.pub)])
    m["archive"].update(size=len(body), sha256=hashlib.sha256(body).hexdigest())
    (vault.folder / "archive.tar.age").write_bytes(body)
    _write_manifest(vault.folder, m)
    with pytest.raises(MailvoiceError, match="after its sealed manifest"):
        restore("alice", str(vault.store), identity_file=vault.ident, root=vault.root)
    _nothing_restored(vault)


# --------------------------------------------------------------------------- the CLI


def test_cli_restore_of_a_forgery_prints_one_error_line(vault):
    base = dict(vault.info.manifest, encrypted=False, key_object=None, recipients=[], archive={"name": "archive.tar"})
    body, m = forge(base, [file_entry("data/records.jsonl", PLANTED)], [member("data/records.jsonl", PLANTED)])
    (vault.folder / "archive.tar").write_bytes(body)
    _write_manifest(vault.folder, m)
    env = {**os.environ, "MAILVOICE_HOME": str(vault.root), "MAILVOICE_NO_PROGRESS": "1",
           "PYTHONPATH": str(ROOT / "src"), "MAILVOICE_AGE_IDENTITY_FILE": str(vault.ident)}
    cmd = [sys.executable, "-m", "mailvoice", "restore", "--user-id", "alice", "--method", "local",
           "--bucket", str(vault.store)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--allow-plaintext" in lines[0], r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    _nothing_restored(vault)
    r = subprocess.run(cmd + ["--allow-plaintext"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (vault.root / "alice" / "data" / "records.jsonl").read_bytes() == PLANTED
