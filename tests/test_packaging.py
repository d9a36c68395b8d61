"""The install promises: pinned stack, guide files in place, shims that reach the package."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_dependency_is_pinned_and_torch_is_the_cpu_wheel():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert all("==" in d for d in deps), [d for d in deps if "==" not in d]
    assert "torch==2.13.0" in deps


def test_requirements_txt_mirrors_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    req = [l.strip() for l in (ROOT / "configs" / "requirements.txt").read_text().splitlines()
           if l.strip() and not l.startswith("#")]
    assert req == deps


def test_every_file_the_readme_and_docs_name_exists():
    """The guide's commands are copied from README.md and docs/: a script, config, sample or bench
    file they name that is renamed or dropped breaks them, so every one named must be here."""
    text = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    named = set(re.findall(r"\b(?:scripts|configs|data-samples|bench)/[\w./-]+\.(?:py|sh|yaml|json|txt|mbox)\b", text))
    # the guide's seven shims, its two configs and its test prompts are among them
    assert {"scripts/prepare-email-data.py", "scripts/finetune-lora.py", "scripts/evaluate-model.py",
            "scripts/deploy-to-ollama.sh", "scripts/backup-training-data.sh", "scripts/restore-training-data.sh",
            "scripts/cleanup-sensitive-data.sh", "configs/lora-config-8b.yaml", "configs/lora-config-70b.yaml",
            "data-samples/test-prompts.json"} <= named
    assert sorted(f for f in named if not (ROOT / f).is_file()) == []


def test_python_shims_reach_the_package():
    for script, verb in [("prepare-email-data.py", "prepare"), ("finetune-lora.py", "train"), ("evaluate-model.py", "evaluate")]:
        r = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "--user-id" in r.stdout or "--config" in r.stdout or "--model" in r.stdout


def test_shell_shims_reach_the_package():
    for script, flag in [("deploy-to-ollama.sh", "--merge"), ("backup-training-data.sh", "--no-encrypt"),
                         ("restore-training-data.sh", "--bucket"), ("cleanup-sensitive-data.sh", "--keep-model")]:
        r = subprocess.run(["bash", str(ROOT / "scripts" / script), "--help"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert flag in r.stdout, (script, r.stdout)


def test_readme_starts_with_exactly_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    cmds = [l.split("#")[0].strip() for l in block.splitlines() if l.strip()]
    assert cmds == ["bash scripts/bootstrap.sh demo", "bash scripts/bootstrap.sh test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/bootstrap.sh test" in ci
