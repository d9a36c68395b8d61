"""Opt-in: deploy the tiny model to a real Ollama server (set OLLAMA_HOST, e.g. 127.0.0.1:11434).

Creates `emailai-mvtest-<random>`, checks it answers and stops through the real server, then
removes it again with `mailvoice models remove`. Needs the llama.cpp tools as well.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_deploy_llama import TC, train_stopping_adapter  # noqa: E402

from mailvoice.cli import main  # noqa: E402
from mailvoice.tools import BINARIES  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not os.environ.get("OLLAMA_HOST"), reason="set OLLAMA_HOST to test against a real Ollama server"),
    pytest.mark.skipif(any(b not in TC.binaries for b in BINARIES) or TC.tree is None, reason="llama.cpp tools not built"),
]


def test_deploy_to_a_real_ollama_and_remove(tiny_model, tmp_path, workspace, capsys):
    from mailvoice.deploy.ollama import OllamaClient

    adapter = train_stopping_adapter(tiny_model, tmp_path / "t", "Hi Sam! quick thought: monday {i}. Cheers,\nDana")
    user = "mvtest-" + secrets.token_hex(3)
    url = os.environ["OLLAMA_HOST"]
    try:
        assert main(["deploy", "--model", str(adapter), "--user-id", user, "--ollama-url", url, "--quantize", "q8_0"]) == 0, capsys.readouterr().err
        with OllamaClient(url) as c:
            assert c.has_model(f"emailai-{user}")
    finally:
        main(["models", "remove", "--user-id", user])
    with OllamaClient(url) as c:
        assert not c.has_model(f"emailai-{user}")
