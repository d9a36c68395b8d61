"""Usage mistakes and bad paths, run through the real CLI as a subprocess: one ``error: …`` line,
no traceback, a non-zero exit (2 for usage errors, as click), nothing created (issue 15, item 1)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(args, *, wrap=(), timeout=60):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MAILVOICE_NO_PROGRESS": "1"}
    env.pop("DATABASE_URL", None)
    return subprocess.run([*wrap, sys.executable, "-m", "mailvoice", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


def assert_one_line(r, code, needle):
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: "), r.stderr
    assert needle in lines[0], lines[0]
    assert r.returncode == code, (r.returncode, r.stderr)


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    d = tmp_path_factory.mktemp("usage")
    (d / "file").write_text("a regular file\n")
    (d / "latin1.yaml").write_bytes("base_model: caf\xe9\n".encode("latin-1"))
    (d / "latin1.json").write_bytes(b'{"a@b.c": "\xe9"}')
    os.mkfifo(d / "pipe.eml")
    (d / "dataset").mkdir()
    return d


USAGE = [
    (["nosuch"], "No such command 'nosuch'"),
    (["prepare"], "Missing option '--user-id'"),
    (["prepare", "--user-id", "u", "--min-emails", "0"], "'--min-emails'"),
    (["prepare", "--user-id", "u", "--bogus"], "No such option: --bogus"),
    (["prepare", "--user-id", "u", "--seed", "x"], "'--seed'"),
    (["train", "--max-steps", "many"], "'--max-steps'"),
    (["explain"], "Missing argument 'file'"),
    (["clean"], "Missing argument 'file'"),  # the old name, kept hidden
    (["models", "nosuch"], "No such command 'nosuch'"),
    (["backup", "verify"], "Missing option '--user-id'"),  # the old name, kept hidden
    (["verify"], "Missing option '--user-id'"),
    (["backups"], "Missing option '--user-id'"),
    (["backups", "--user-id", "u", "--method", "ftp"], "'ftp' is not one of 's3', 'local', 'url'"),
    (["deploy", "--model", ".", "--user-id", "u", "--target", "k8s"], "'k8s' is not one of 'ollama', 'vllm'"),
    (["prepare", "--user-id", "u", "--emailai-format", "v3"], "'v3' is not one of 'fork', 'upstream'"),
    (["prepare", "--user-id", "u", "--format", "csv"], "'csv' is not one of 'alpaca', 'chat', 'both'"),
    (["gateway", "--upstream-api", "grpc"], "'grpc' is not one of 'ollama', 'openai'"),
    (["cloud", "launch", "--max-concurrent", "0"], "'--max-concurrent'"),
    (["write", "hi", "--user-id", "u", "--candidates", "99"], "'--candidates'"),
]


@pytest.mark.parametrize("args,needle", USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_mistake_is_one_line_exit_2(args, needle):
    r = run(args)
    assert_one_line(r, 2, needle)
    assert "mailvoice" in r.stderr and "--help" in r.stderr  # says where to look


def test_bare_command_shows_help_without_traceback():
    r = run([])
    assert "Traceback" not in r.stderr and "prepare" in r.stderr + r.stdout


def _paths(d):
    f = d / "file"
    return [
        # prepare: the output is checked before the sources are even opened (the source is missing:
        # an error about it would mean the ingest started first)
        (["prepare", "--user-id", "u", "--source", str(d / "missing.mbox"), "--output", str(f / "out")], "--output"),
        (["prepare", "--user-id", "u", "--source", str(d / "missing.mbox"), "--workspace", str(f / "ws")], "--workspace"),
        (["prepare", "--user-id", "u", "--source", str(d / "missing.mbox"), "--output", str(f)], "not a folder"),
        (["explain", str(d / "pipe.eml")], "not a regular file"),
        (["explain", str(d)], "is a folder"),
        (["explain", str(d / "none.eml")], "no such file"),
        (["review", str(d / "dataset"), "--output", str(f / "r.html")], "--output"),
        (["review", str(d / "none")], "no dataset_alpaca.json"),
        (["train", "--config", str(d / "latin1.yaml")], "not UTF-8"),
        (["train", "--config", str(d / "none.yaml")], "no such file"),
        (["train", "--config", "configs/lora-config-cpu.yaml", "--accelerate-config", str(f / "a.yaml")], "--accelerate-config"),
        (["train", "--config", "configs/lora-config-cpu.yaml", "--output", str(f / "run")], "--output"),
        (["train", "--config", "configs/lora-config-cpu.yaml", "--data", str(d / "none")], "--data"),
        (["evaluate", "--model", str(d), "--output", str(f / "e.json")], "--output"),
        (["evaluate", "--model", str(d), "--test-data", str(d / "latin1.json")], "not UTF-8"),
        (["deploy", "--model", str(d), "--user-id", "u", "--env-file", str(f / ".env"), "--workspace", str(d / "ws")], "--env-file"),
        (["deploy", "--model", str(d), "--user-id", "u", "--workspace", str(f / "ws")], "--workspace"),
        (["keys", "new", "--identity", str(f / "key.txt")], "--identity"),
        (["backup", "--user-id", "u", "--method", "local", "--bucket", str(f / "b"), "--no-encrypt", "--workspace", str(d / "ws")], "--bucket"),
        (["backup", "--user-id", "u", "--method", "local", "--bucket", str(d / "b"), "--passphrase-file", str(d / "none")], "--passphrase-file"),
        (["restore", "--user-id", "u", "--method", "local", "--bucket", str(d), "--identity", str(d / "none")], "--identity"),
        (["restore", "--user-id", "u", "--method", "local", "--bucket", str(d), "--workspace", str(f / "ws")], "--workspace"),
        (["gateway", "--users-map", str(d / "latin1.json")], "not UTF-8"),
        (["write", "hi", "--user-id", "u", "--reply-to", str(d / "pipe.eml")], "not a regular file"),
        (["cloud", "launch", "--user-id", "u", "--bucket", "s3://b", "--config", str(d / "latin1.yaml")], "not UTF-8"),
        (["cloud", "fetch", "--user-id", "u", "--identity", str(d / "none")], "--identity"),
        (["tools", "install", "--sdist", str(d / "none.tar.gz")], "--sdist"),
        (["demo", "--workspace", str(f / "ws")], "--workspace"),
    ]


def test_bad_paths_are_one_line_before_any_work(fx):
    before = sorted(p.name for p in fx.iterdir())
    for args, needle in _paths(fx):
        r = run(args)
        assert_one_line(r, 1, needle)
    assert sorted(p.name for p in fx.iterdir()) == before  # nothing created anywhere


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop root's override")
def test_read_only_output_folder(tmp_path):
    """As root every folder is writable, so drop CAP_DAC_OVERRIDE: then 0555 really is read-only."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    wrap = ("setpriv", "--bounding-set=-dac_override,-dac_read_search") if os.geteuid() == 0 else ()
    try:
        r = run(["prepare", "--user-id", "u", "--source", str(tmp_path / "missing.mbox"), "--output", str(ro / "out")],
                wrap=wrap)
        assert_one_line(r, 1, "is not writable")
        r = run(["keys", "new", "--identity", str(ro / "key.txt")], wrap=wrap)
        assert_one_line(r, 1, "is not writable")
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []
