"""The demo pipeline end to end on the real SmolLM2, on a trimmed sample mailbox."""

import json
import stat
from pathlib import Path

import pytest
import torch

from conftest import trimmed_mbox

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory, smollm2):
    from mailvoice.demo import run_demo

    tmp = tmp_path_factory.mktemp("demo")
    trimmed_mbox(tmp / "trimmed.mbox", 70)
    out = run_demo(workspace=tmp / "ws", mailbox=tmp / "trimmed.mbox", steps=8, eval_prompts=2, max_new_tokens=32)
    return out


def _jsonl(p: Path):
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]


def test_dataset_files_follow_their_schemas(demo):
    data = Path(demo["data"])
    for split in ("train", "val"):
        alpaca = _jsonl(data / f"{split}_alpaca.jsonl")
        chat = _jsonl(data / f"{split}_chat.jsonl")
        assert alpaca and len(alpaca) == len(chat)
        for a, c in zip(alpaca, chat):
            assert set(a) == {"id", "thread_id", "date", "instruction", "input", "output"}
            assert [m["role"] for m in c["messages"]] == ["system", "user", "assistant"]
            assert c["messages"][2]["content"] == a["output"] and a["output"].strip()
            assert "wrote:" not in a["output"] and not any(l.startswith(">") for l in a["output"].splitlines())
    train_threads = {r["thread_id"] for r in _jsonl(data / "train_chat.jsonl")}
    val_threads = {r["thread_id"] for r in _jsonl(data / "val_chat.jsonl")}
    assert not train_threads & val_threads, "a thread straddles train and val"
    manifest = json.loads((data / "dataset_alpaca.json").read_text())
    meta = manifest["metadata"]
    assert len(manifest["records"]) == meta["counts"]["train"] + meta["counts"]["val"]
    assert meta["tokens"]["max"] > 0 and meta["source_stats"]["kept"] > 0
    for p in data.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_adapter_loads_with_peft_and_changes_the_logits(demo, smollm2):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final = Path(demo["final"])
    tok = AutoTokenizer.from_pretrained(str(final))
    ids = tok("Hi Sam! Quick thought on the planting plan", return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(str(smollm2))
    with torch.no_grad():
        before = base(**ids).logits
    tuned = PeftModel.from_pretrained(base, str(final))
    with torch.no_grad():
        after = tuned(**ids).logits
    assert (after - before).abs().max() > 1e-2
    summary = json.loads((final / "training_summary.json").read_text())
    assert summary["steps"] == 8 and summary["base_hf_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_evaluation_results_side_by_side(demo):
    results = json.loads(Path(demo["eval"]).read_text())
    prompts = json.loads((Path(__file__).resolve().parents[1] / "data-samples" / "test-prompts.json").read_text())
    assert [r["prompt"] for r in results[: len(prompts)]] == [p["prompt"] for p in prompts]
    assert len(results) == len(prompts) + 2
    for r in results:
        assert {"prompt", "generated", "base_generated"} <= set(r)
        assert isinstance(r["generated"], str) and isinstance(r["base_generated"], str)
    assert any(r["generated"] != r["base_generated"] for r in results)
    metrics = json.loads((Path(demo["eval"]).with_name("metrics.json")).read_text())
    assert metrics["val_perplexity"]["base"] > 0 and metrics["val_perplexity"]["tuned"] > 0


def test_modelfile_uses_the_training_template(demo):
    from mailvoice.chat import CHATML, SYSTEM_PROMPT

    out = Path(demo["deploy"])
    text = (out / "Modelfile").read_text()
    if demo["gguf"]:  # llama.cpp tools installed: the merged, quantized GGUF, ready for `ollama create`
        gguf = Path(demo["gguf"])
        assert text.startswith(f"FROM {gguf.absolute()}\n") and gguf.is_file()
        assert gguf.read_bytes()[:4] == b"GGUF"
    else:
        assert text.startswith("FROM smollm2:135m-instruct-fp16\n")
        assert f"ADAPTER {out / 'adapter'}" in text
    assert f'TEMPLATE """{CHATML.ollama_template}"""' in text
    assert f'SYSTEM """{SYSTEM_PROMPT}"""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text
    assert "PARAMETER temperature 0.7" in text
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    art = json.loads((out / "artefacts.json").read_text())
    assert art["model"] == "emailai-dana" and art["chat_format"] == "chatml"
    assert not (out / "deploy.json").exists()  # the registry only records real deploys
