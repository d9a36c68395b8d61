import os
import stat

import pytest

from mailvoice.errors import MailvoiceError
from mailvoice.workspace import atomic_open, user_space, validate_user_id, write_json


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "..", ".hidden", "a b", "x" * 65, "é", "a\\b", "-lead"])
def test_invalid_user_ids_are_rejected(bad):
    with pytest.raises(MailvoiceError, match="invalid user id"):
        validate_user_id(bad)


@pytest.mark.parametrize("good", ["dana", "user_42", "A-b-C", "0"])
def test_valid_user_ids(good):
    assert validate_user_id(good) == good


def test_user_space_is_private(tmp_path):
    os.umask(0o022)
    space = user_space("dana", tmp_path / "root").ensure()
    for part in (space.path, space.data, space.runs, space.models, space.eval):
        assert stat.S_IMODE(part.stat().st_mode) == 0o700
    f = write_json(space.data / "x.json", {"a": 1})
    assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_workspace_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILVOICE_HOME", str(tmp_path / "h"))
    assert user_space("u").path == (tmp_path / "h" / "u").absolute()


def test_run_and_checkpoint_listing_skips_links(tmp_path):
    space = user_space("dana", tmp_path / "root").ensure()
    assert space.run_dirs() == [] and space.checkpoint_dirs() == []
    (space.runs / "b" / "checkpoint-20").mkdir(parents=True)
    (space.runs / "a" / "checkpoint-10").mkdir(parents=True)
    (space.runs / "a" / "final").mkdir()
    (space.runs / "a" / "checkpoint-5.txt").write_text("not a folder")
    outside = tmp_path / "elsewhere"
    (outside / "checkpoint-1").mkdir(parents=True)
    (space.runs / "linked-run").symlink_to(outside)
    (space.runs / "b" / "checkpoint-30").symlink_to(outside / "checkpoint-1")
    assert [p.name for p in space.run_dirs()] == ["a", "b"]
    assert [p.relative_to(space.runs).as_posix() for p in space.checkpoint_dirs()] == ["a/checkpoint-10", "b/checkpoint-20"]
