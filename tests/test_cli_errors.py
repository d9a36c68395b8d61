"""Bad input: one line on stderr, a non-zero exit, no traceback, nothing written."""

import mailbox
import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def run(*args, env_extra=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MAILVOICE_NO_PROGRESS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "mailvoice", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=300)


def one_line_error(r):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def tree(p: Path):
    return sorted(str(x.relative_to(p)) for x in p.rglob("*")) if p.exists() else []


def small_mbox(path: Path, n: int, sender="dana@willowcreek-design.example"):
    box = mailbox.mbox(str(path))
    for i in range(n):
        m = EmailMessage()
        m["From"] = f"Dana <{sender}>"
        m["To"] = "sam@example.com"
        m["Subject"] = f"Visit {i}"
        m["Message-ID"] = f"<m{i}@willowcreek-design.example>"
        m["Date"] = f"Mon, {i % 27 + 1:02d} Jan 2026 10:00:00 +0000"
        m.set_content(f"Hi Sam! Quick thought on the planting plan number {i} for the garden.\n\nCheers,\nDana\n")
        box.add(m)
    box.close()
    return path


def test_invalid_user_id(tmp_path):
    ws = tmp_path / "ws"
    r = run("prepare", "--user-id", "../../etc", "--source", str(small_mbox(tmp_path / "a.mbox", 3)), "--workspace", str(ws))
    assert "invalid user id" in one_line_error(r)
    assert not ws.exists()


def test_missing_mailbox(tmp_path):
    ws = tmp_path / "ws"
    r = run("prepare", "--user-id", "dana", "--source", str(tmp_path / "nope.mbox"), "--workspace", str(ws))
    assert "nope.mbox" in one_line_error(r)
    assert not ws.exists()


def test_too_few_emails_says_how_many(tmp_path):
    ws = tmp_path / "ws"
    box = small_mbox(tmp_path / "few.mbox", 4)
    r = run("prepare", "--user-id", "dana", "--source", str(box), "--user-email", "dana@willowcreek-design.example",
            "--workspace", str(ws), "--min-emails", "50")
    line = one_line_error(r)
    assert "found 4 usable emails" in line and "at least 50" in line
    assert tree(ws) == []


def test_guide_shim_gives_the_same_error(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare-email-data.py"), "--user-id", "bad/id",
                        "--output", str(out), "--source", "x"], capture_output=True, text=True, timeout=120)
    assert "invalid user id" in one_line_error(r)
    assert not out.exists()


def test_llm_instructions_without_a_backend_is_one_line(tmp_path):
    r = run("prepare", "--user-id", "u", "--source", "x", "--instructions", "llm", "--workspace", str(tmp_path / "ws"))
    line = one_line_error(r)
    assert "--instructions llm needs --llm-url" in line
    assert not (tmp_path / "ws").exists()


def test_bad_config_is_one_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("base_modle: x\n")
    line = one_line_error(run("train", "--config", str(cfg)))
    assert "did you mean 'base_model'" in line


def test_print_config_shows_resolved_values():
    r = run("train", "--config", "configs/lora-config-8b.yaml", "--print-config")
    assert r.returncode == 0, r.stderr
    assert "base_model: meta-llama/Llama-3.1-8B-Instruct" in r.stdout and "lora_r: 16" in r.stdout


def test_evaluate_missing_model_is_one_line(tmp_path):
    line = one_line_error(run("evaluate", "--model", str(tmp_path / "none"), "--output", str(tmp_path / "e.json")))
    assert "no PEFT adapter" in line
    assert not (tmp_path / "e.json").exists()
