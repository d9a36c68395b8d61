"""Batched generation and perplexity (evaluate's speed) against the one-by-one path, on the tiny
random Llama: same texts, same order, per-row seeds independent of the batch."""

import json

import pytest

from conftest import SAMPLES

from mailvoice.evaluate.generate import GenOptions, generate, reply_perplexity


@pytest.fixture(scope="module")
def tiny(tiny_model):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32)
    # LoRA weights from a fixed seed: the global RNG's state depends on which tests ran before,
    # and some draws leave the random model emitting the same tokens with the adapter on and off.
    torch.manual_seed(1)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.eval()
    return model, tok


PROMPTS = [p["prompt"] for p in json.loads((SAMPLES / "test-prompts.json").read_text())]


def test_batched_greedy_matches_one_by_one_in_order(tiny):
    model, tok = tiny
    opts = GenOptions(max_new_tokens=12)
    one = generate(model, tok, PROMPTS, opts, batch_size=1)
    ticks = []
    many = generate(model, tok, PROMPTS, opts, batch_size=4, progress=lambda: ticks.append(1))
    assert [g["text"] for g in many] == [g["text"] for g in one]
    assert [g["stopped"] for g in many] == [g["stopped"] for g in one]
    assert len(ticks) == len(PROMPTS) and all(g["tokens"] <= 12 for g in many)
    # the adapter matters: the base pass (adapter off) is a different model
    base = generate(model, tok, PROMPTS, opts, use_adapter=False, batch_size=4)
    assert [g["text"] for g in base] != [g["text"] for g in many]


def test_sampling_keeps_per_row_seeds_whatever_the_batch(tiny):
    model, tok = tiny
    opts = GenOptions(max_new_tokens=10, temperature=1.0, top_p=0.95, seed=7)
    together = generate(model, tok, PROMPTS[:4], opts, batch_size=4)
    alone = generate(model, tok, PROMPTS[:4], opts, batch_size=1)
    assert [g["text"] for g in together] == [g["text"] for g in alone]
    again = generate(model, tok, PROMPTS[:4], opts, batch_size=2)
    assert [g["text"] for g in again] == [g["text"] for g in together]
    other_seed = generate(model, tok, PROMPTS[:4], GenOptions(max_new_tokens=10, temperature=1.0, top_p=0.95, seed=8),
                          batch_size=4)
    assert [g["text"] for g in other_seed] != [g["text"] for g in together]


def test_batched_perplexity_matches_row_by_row(tiny):
    model, tok = tiny
    rows = [{"messages": [{"role": "system", "content": "Write an email."}, {"role": "user", "content": p},
                          {"role": "assistant", "content": "Thanks, see you Tuesday." * (i + 1)}]}
            for i, p in enumerate(PROMPTS)]
    seen = []
    batched = reply_perplexity(model, tok, rows, batch_size=4, progress=seen.append)
    single = reply_perplexity(model, tok, rows, batch_size=1)
    assert batched == pytest.approx(single, rel=1e-4) and sum(seen) == len(rows)
    assert reply_perplexity(model, tok, rows, use_adapter=False) != pytest.approx(single, rel=1e-4)
