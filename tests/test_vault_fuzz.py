"""Property tests (hypothesis) for vault restore: whatever the manifest and whatever the tar
stream, restore writes nothing outside the user's space (and the tar reader nothing outside its
staging folder), and fails only with a one-line ``MailvoiceError``. Bounded (a fixed number of
examples, no deadline, no example database) so the suite stays fast and leaves no files.
``MAILVOICE_FUZZ_SCALE=20`` runs twenty times as many examples, for a deeper look."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("pyrage")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mailvoice.errors import MailvoiceError  # noqa: E402
from mailvoice.vault import backup, latest_backup, restore  # noqa: E402
from mailvoice.vault.manifest import parse_manifest  # noqa: E402
from mailvoice.vault.tarstream import ALLOWED_TOP, SEAL_MEMBER, check_relpath, read_archive  # noqa: E402
from mailvoice.workspace import user_space  # noqa: E402

SCALE = int(os.environ.get("MAILVOICE_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=120 * SCALE, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
ESCAPE = "/tmp/mailvoice-vault-fuzz-escape"

json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30)
json_any = st.recursive(
    json_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4), max_leaves=20
)

SAFE = ["data/a.jsonl", "data/sub/b.bin", "runs/r/final/x", "models/m.gguf", "eval/e.json"]
names = st.one_of(
    st.sampled_from(SAFE),
    st.sampled_from(SAFE),
    st.sampled_from([*SAFE, "data", "data/", "data/../../escape", "../escape", "/tmp/mailvoice-vault-fuzz-escape",
                     "data/./a", "data//a", "other/a", ".", "", SEAL_MEMBER, "data/a.jsonl\x00x", "data\\a",
                     "data/" + "x" * 300, "data/ü-é.txt"]),
    st.text(alphabet="abd./\\-_\x00ü", max_size=40),
)
types = st.sampled_from([tarfile.REGTYPE, tarfile.REGTYPE, tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE,
                         tarfile.SYMTYPE, tarfile.LNKTYPE,
                         tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"Z"])


@st.composite
def tar_streams(draw):
    """A tar built from hostile members (then maybe cut or flipped), and the manifest's view of
    it: a random subset of the members, some with wrong sizes or digests."""
    fmt = draw(st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
    buf = io.BytesIO()
    expected: dict[str, dict] = {}
    try:
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
            for _ in range(draw(st.integers(0, 5))):
                ti = tarfile.TarInfo(draw(names))
                ti.type = draw(types)
                ti.mode = draw(st.integers(0, 0o7777))
                ti.mtime = draw(st.integers(0, 2**33))
                if ti.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                    ti.linkname = draw(names)
                data = draw(st.binary(max_size=600)) if ti.type in tarfile.REGULAR_TYPES else b""
                ti.size = len(data)
                if draw(st.booleans()):
                    ti.pax_headers = {draw(st.sampled_from(["path", "size", "linkpath", "GNU.sparse.size",
                                                            "GNU.sparse.map", "mtime"])): draw(st.text(max_size=20))}
                tar.addfile(ti, io.BytesIO(data) if data else None)
                listing = draw(st.sampled_from(["exact", "exact", "exact", "size", "digest", "unlisted"]))
                if listing != "unlisted":
                    size = draw(st.integers(0, 2**20)) if listing == "size" else len(data)
                    digest = "0" * 64 if listing == "digest" else hashlib.sha256(data).hexdigest()
                    expected[ti.name] = {"size": size, "sha256": digest}
    except (ValueError, UnicodeError, OverflowError, tarfile.TarError):
        assume(False)  # tarfile itself cannot write this member
    body = buf.getvalue()
    damage = draw(st.sampled_from(["none", "none", "cut", "flip"]))
    if damage == "cut":
        body = body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    flips = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=3)) \
        if damage == "flip" else []
    b = bytearray(body)
    for pos, x in flips:
        if b:
            b[pos % len(b)] ^= x
    return bytes(b), expected


def _outside_snapshot(base: Path, inside: Path) -> dict[str, int]:
    out = {}
    for p in base.rglob("*"):
        if inside in p.parents or p == inside:
            continue
        out[str(p)] = p.lstat().st_size
    return out


@FUZZ
@given(tar_streams(), st.booleans())
def test_any_tar_stream_stays_in_staging_and_fails_cleanly(stream, seal):
    body, expected = stream
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        staging = base / "root" / "alice" / "staging"
        staging.mkdir(parents=True)
        (base / "neighbour").mkdir()
        before = _outside_snapshot(base, staging)
        try:
            got = read_archive(io.BytesIO(body), expected, staging, seal=seal)
        except MailvoiceError as exc:
            assert "\n" not in str(exc)
        else:  # accepted: exactly the manifest's files, each with its digest
            assert {e.path for e in got.files} == set(expected)
            for e in got.files:
                data = (staging / e.path).read_bytes()
                assert hashlib.sha256(data).hexdigest() == expected[e.path]["sha256"]
        assert _outside_snapshot(base, staging) == before
        for p in staging.rglob("*"):
            assert not p.is_symlink() and (p.is_dir() or p.is_file())
            assert os.path.realpath(p).startswith(os.path.realpath(staging) + os.sep)
        assert not os.path.lexists(ESCAPE)


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes_as_a_tar_fail_cleanly(body):
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "s"
        staging.mkdir()
        try:
            read_archive(io.BytesIO(body), {}, staging, seal=True)
        except MailvoiceError as exc:
            assert "\n" not in str(exc)
        assert not os.path.lexists(ESCAPE)


# --------------------------------------------------------------------------- manifests


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    """One genuine plaintext backup (the deepest path through restore without a key)."""
    import warnings

    t = tmp_path_factory.mktemp("genuine")
    root, store = t / "root", t / "store"
    sp = user_space("alice", root).ensure()
    (sp.data / "train.jsonl").write_bytes(b'{"x": 1}\n' * 10)
    (sp.runs / "r1" / "final").mkdir(parents=True)
    (sp.runs / "r1" / "final" / "a.bin").write_bytes(b"\1" * 700)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backup("alice", str(store), no_encrypt=True, root=root)
    info = latest_backup("alice", str(store))
    folder = store / "alice" / info.folder
    return folder, info.manifest


def _paths(obj, prefix=()):
    """Every (path-to-leaf) in a JSON value, so a mutation can hit any field."""
    if isinstance(obj, dict):
        yield prefix
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        yield prefix
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))
    else:
        yield prefix


def _mutate(m: dict, path: tuple, value, delete: bool) -> dict:
    m = json.loads(json.dumps(m))
    if not path:
        return value if delete else m
    parent = m
    for k in path[:-1]:
        parent = parent[k]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return m


@settings(max_examples=80 * SCALE, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_manifest_restores_inside_the_user_space_or_fails_cleanly(genuine, data):
    folder, manifest = genuine
    paths = list(_paths(manifest))
    edits = data.draw(st.lists(st.tuples(st.sampled_from(paths), json_any, st.booleans()), min_size=1, max_size=3))
    m = manifest
    for path, value, delete in edits:
        try:
            m = _mutate(m, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        store = base / "store"
        dst = store / "alice" / folder.name
        shutil.copytree(folder, dst)
        try:
            (dst / "manifest.json").write_text(json.dumps(m))
        except ValueError:
            assume(False)
        root = base / "root"
        (base / "bystander").mkdir()
        (base / "bystander" / "keep").write_text("keep")
        before = _outside_snapshot(base, root)
        try:
            r = restore("alice", str(store), root=root, allow_plaintext=True)
        except MailvoiceError as exc:
            assert "\n" not in str(exc)
        else:
            assert r.files == len(manifest["files"])  # only a manifest equal to the sealed copy restores
        assert _outside_snapshot(base, root) == before
        if (root / "alice").exists():
            for p in (root / "alice").rglob("*"):
                rel = p.relative_to(root / "alice").as_posix()
                assert rel == "audit.log" or rel.split("/")[0] in ALLOWED_TOP, rel
                if p.is_file() and rel != "audit.log":
                    check_relpath(rel)
        assert not os.path.lexists(ESCAPE)


@settings(max_examples=200 * SCALE, deadline=None, database=None)
@given(json_any)
def test_parse_manifest_takes_any_json(value):
    raw = json.dumps(value).encode()
    try:
        parse_manifest(raw, user_id="alice", folder="20260101T000000.000000Z-0123456789ab")
    except MailvoiceError as exc:
        assert "\n" not in str(exc)
    else:  # pragma: no cover - a random value is never a valid manifest
        pytest.fail("arbitrary JSON accepted as a manifest")


@settings(max_examples=100 * SCALE, deadline=None, database=None)
@given(st.binary(max_size=500))
def test_parse_manifest_takes_any_bytes(raw):
    try:
        parse_manifest(raw, user_id="alice", folder="20260101T000000.000000Z-0123456789ab")
    except MailvoiceError as exc:
        assert "\n" not in str(exc)
