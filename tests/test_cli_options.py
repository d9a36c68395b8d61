"""The CLI's closed choices (mailvoice/options.py) match the stages that own each concept, and loading
them costs nothing: cli.py imports them at startup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mailvoice import options
from mailvoice.dataset.emailai_format import VARIANTS
from mailvoice.deploy.gguf import QUANTS
from mailvoice.rag.index import RETRIEVERS
from mailvoice.vault import Method, Vault, destination

ROOT = Path(__file__).resolve().parents[1]


def test_choices_match_their_stage():
    assert set(options.EmailAIFormat) == set(VARIANTS)
    assert set(options.Quant) == set(QUANTS)
    assert set(options.Retriever) == set(RETRIEVERS)
    assert Method is options.Method  # one definition: the vault takes what the CLI parsed
    from mailvoice.deploy.modelfile import EMAIL_PARAMETERS
    from mailvoice.evaluate.generate import GenOptions

    served = GenOptions.decoding(options.Decoding.served, 50)
    assert (served.temperature, served.top_p, served.repetition_penalty, served.max_new_tokens) == (
        EMAIL_PARAMETERS["temperature"], EMAIL_PARAMETERS["top_p"], EMAIL_PARAMETERS["repeat_penalty"], 50)
    assert GenOptions.decoding(options.Decoding.greedy).temperature == 0.0


def test_the_vault_takes_the_cli_choice_or_its_string():
    assert destination("b", options.Method.s3) == destination("b", "s3") == "s3://b/mailvoice"
    assert Vault.open("/tmp/x", options.Method.local).dest == "/tmp/x"


def test_options_import_nothing_heavy():
    code = ("import sys, mailvoice.cli; heavy = {'pyrage', 'fsspec', 'pydantic', 'numpy', 'torch', 'mailvoice.vault'}; "
            "print(sorted(heavy & set(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
