"""Training on the tiny random Llama: runs, checkpoints, a loadable adapter, clear config errors."""

import json
from pathlib import Path

import pytest
import torch

from mailvoice.chat import SYSTEM_PROMPT
from mailvoice.errors import MailvoiceError
from mailvoice.train.config import load_config, validate_config
from mailvoice.train.run import COMPLETE_MARKER, find_checkpoint, train


def _write_data(d: Path, n=24):
    d.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Write an email to Sam.\nSubject: visit {i}"},
                {"role": "assistant", "content": f"Hi Sam! quick thought: monday {i % 5}. Cheers,\nDana"},
            ]
        }
        for i in range(n)
    ]
    (d / "train_chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:-4]))
    (d / "val_chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[-4:]))
    return d


@pytest.fixture(scope="module")
def tiny_run(tiny_model, tmp_path_factory):
    base = tmp_path_factory.mktemp("run")
    data = _write_data(base / "data")
    cfg = validate_config({"base_model": str(tiny_model), "max_steps": 8, "per_device_train_batch_size": 4,
                           "learning_rate": 5e-3, "report_to": ["tensorboard"], "lora_dropout": 0.0})
    return train(cfg, data_dir=data, run_dir=base / "run", notice=lambda m: None), tiny_model


def test_run_writes_checkpoints_final_adapter_and_summary(tiny_run):
    result, _ = tiny_run
    ckpts = sorted(result.run_dir.glob("checkpoint-*"))
    assert len(ckpts) >= 2, "even a short run must checkpoint before it ends"
    assert all((c / COMPLETE_MARKER).is_file() for c in ckpts)
    assert find_checkpoint(result.run_dir).name == "checkpoint-8"
    for f in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "training_summary.json"):
        assert (result.final_dir / f).is_file(), f
    s = json.loads((result.final_dir / "training_summary.json").read_text())
    assert s["steps"] == 8 and s["rows"] == {"train": 20, "val": 4}
    assert s["train_loss"] and s["eval_loss"] and s["tokens_per_s"] > 0
    assert 0 < s["target_token_fraction"] < 1
    assert list((result.run_dir / "tensorboard").rglob("events.out.tfevents*"))


def test_adapter_loads_with_peft_and_changes_logits(tiny_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, base = tiny_run
    tok = AutoTokenizer.from_pretrained(str(result.final_dir))
    ids = tok("Hi Sam! quick thought", return_tensors="pt")
    plain = AutoModelForCausalLM.from_pretrained(str(base))
    with torch.no_grad():
        before = plain(**ids).logits
    tuned = PeftModel.from_pretrained(plain, str(result.final_dir))
    with torch.no_grad():
        after = tuned(**ids).logits
    assert (after - before).abs().max() > 1e-3


def test_train_loss_went_down(tiny_run):
    result, _ = tiny_run
    losses = result.summary["train_loss"]
    assert losses[-1] < losses[0]


def test_packed_rows_see_only_themselves(tiny_model):
    """Padding-free batches: logits of a row inside a packed batch equal the row run alone."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model)).eval()
    a = torch.randint(5, 200, (1, 11))
    b = torch.randint(5, 200, (1, 7))
    packed = torch.cat([a, b], dim=1)
    pos = torch.cat([torch.arange(11), torch.arange(7)])[None]
    with torch.no_grad():
        alone = model(input_ids=b, use_cache=False).logits
        inside = model(input_ids=packed, position_ids=pos, use_cache=False).logits[:, 11:]
    assert torch.allclose(alone, inside, atol=1e-4)
    # and the trainer runs without a KV cache, the condition for that packed mask
    from mailvoice.train.run import load_model
    from mailvoice.train.config import validate_config
    m = load_model(validate_config({"base_model": str(tiny_model)}), str(tiny_model), notice=lambda s: None)
    assert m.config.use_cache is False


def test_unknown_key_names_the_nearest_valid_one(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("base_model: x\nlearning_rat: 0.1\n")
    with pytest.raises(MailvoiceError, match="unknown key 'learning_rat'; did you mean 'learning_rate'"):
        load_config(p)


def test_bad_values_and_yaml_are_one_line_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("lora_r: -3\n")
    with pytest.raises(MailvoiceError, match="lora_r") as e:
        load_config(p)
    assert "\n" not in str(e.value)
    p.write_text("a: [unclosed\n")
    with pytest.raises(MailvoiceError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(MailvoiceError, match="config not found"):
        load_config(tmp_path / "missing.yaml")


def test_presets_load_with_the_guides_values():
    root = Path(__file__).resolve().parents[1] / "configs"
    c8 = load_config(root / "lora-config-8b.yaml")
    assert (c8.base_model, c8.lora_r, c8.num_train_epochs, c8.learning_rate, c8.per_device_train_batch_size) == (
        "meta-llama/Llama-3.1-8B-Instruct", 16, 3, 2e-4, 4)
    c70 = load_config(root / "lora-config-70b.yaml")
    assert (c70.base_model, c70.lora_r, c70.num_train_epochs, c70.learning_rate, c70.per_device_train_batch_size) == (
        "meta-llama/Llama-3.3-70B-Instruct", 32, 2, 1e-4, 1)
    cpu = load_config(root / "lora-config-cpu.yaml")
    assert cpu.base_model == "smollm2-135m" and not cpu.use_4bit


def test_accelerate_fsdp_config_loads_with_accelerate(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    from mailvoice.cli import main

    out = tmp_path / "fsdp.yaml"
    assert main(["train", "--config", "configs/lora-config-70b.yaml", "--accelerate-config", str(out), "--num-gpus", "4"]) == 0
    cfg = load_config_from_file(str(out))
    assert cfg.distributed_type == "FSDP" and cfg.num_processes == 4 and cfg.mixed_precision == "bf16"
    fsdp = cfg.fsdp_config
    assert fsdp["fsdp_use_orig_params"] is True and fsdp["fsdp_cpu_ram_efficient_loading"] is True
    assert fsdp["fsdp_sharding_strategy"] == "FULL_SHARD" and fsdp["fsdp_sync_module_states"] is True


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: QLoRA 4-bit (bitsandbytes) is CUDA-only")
def test_qlora_4bit_loads_on_cuda(tiny_model):
    from mailvoice.train.run import load_model

    m = load_model(validate_config({"base_model": str(tiny_model), "use_4bit": True}), str(tiny_model))
    assert getattr(m, "is_loaded_in_4bit", False)


def test_use_4bit_on_cpu_falls_back_with_a_notice(tiny_model):
    from mailvoice.train.run import load_model

    if torch.cuda.is_available():
        pytest.skip("CPU-only behaviour")
    notes = []
    m = load_model(validate_config({"base_model": str(tiny_model), "use_4bit": True}), str(tiny_model), notice=notes.append)
    assert notes and "CUDA" in notes[0]
    assert not getattr(m, "is_loaded_in_4bit", False)
