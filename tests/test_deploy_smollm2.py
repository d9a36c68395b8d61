"""The proof of equivalence on a real model: SmolLM2-135M-Instruct + a LoRA, greedy, token ids.

HF + PEFT (fp32) against llama.cpp: the f32 GGUF base + the GGUF LoRA, and the merged GGUF.
Needs the llama.cpp tools (`mailvoice tools install`) and the cached SmolLM2 preset.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_deploy import make_random_adapter  # noqa: E402
from test_deploy_llama import TC, hf_greedy, llama_greedy, pytestmark, prompt_ids  # noqa: E402,F401

from mailvoice.deploy import gguf  # noqa: E402

N = 16


@pytest.fixture(scope="module")
def smol_ggufs(smollm2, tmp_path_factory):
    out = tmp_path_factory.mktemp("smol")
    adapter = make_random_adapter(smollm2, out / "adapter", seed=1, scale=5.0)
    base = gguf.resolve_base(adapter)
    merged = gguf.merge_adapter(adapter, base, out / "merged-hf")
    g = {
        "adapter": adapter,
        "base_f32": gguf.convert_hf(TC, smollm2, out / "base-f32.gguf", "f32"),
        "lora_f32": gguf.convert_lora(TC, adapter, base, out / "lora-f32.gguf", "f32"),
        "merged_f32": gguf.convert_hf(TC, merged, out / "merged-f32.gguf", "f32"),
    }
    import shutil

    shutil.rmtree(merged)
    return g


def test_smollm2_greedy_ids_match_hf_peft(smollm2, smol_ggufs):
    ids = prompt_ids(smollm2)
    want = hf_greedy(smollm2, smol_ggufs["adapter"], ids, n=N)
    base_only = hf_greedy(smollm2, None, ids, n=N)
    assert want != base_only, "the LoRA must change the greedy output for this to prove anything"
    assert llama_greedy(smol_ggufs["base_f32"], [smol_ggufs["lora_f32"]], ids, n=N) == want
    assert llama_greedy(smol_ggufs["merged_f32"], [], ids, n=N) == want
