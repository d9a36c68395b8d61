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


def test_scored_positions_only_give_the_full_heads_numbers(tiny):
    """selected_logits (the LM head at the scored positions only: memory ∝ reply tokens, not
    batch × length × vocabulary) equals the full forward's logits there, adapter on and off."""
    import torch

    from mailvoice.evaluate.generate import selected_logits

    model, tok = tiny
    enc = tok(PROMPTS[:3], return_tensors="pt", padding=True)
    keep = torch.zeros_like(enc["attention_mask"], dtype=torch.bool)
    keep[0, 2:5], keep[2, 1] = True, True
    with torch.no_grad():
        for ctx in (torch.enable_grad(), model.disable_adapter()):  # adapter on, then off
            with ctx, torch.no_grad():
                full = model(**enc).logits[keep]
                part = selected_logits(model, enc["input_ids"], enc["attention_mask"], keep)
                assert part.shape == (4, full.shape[-1])
                assert torch.allclose(part, full, atol=1e-5)


def test_perplexity_cuts_rows_as_training_does(tiny):
    """A row longer than the training length loses quoted context first (train.run.tokenize_rows),
    so memory stays bounded; its reply is still scored."""
    model, tok = tiny
    reply = "Thanks, see you Tuesday."
    long_row = {"messages": [{"role": "system", "content": "Write an email."},
                             {"role": "user", "content": "Write a reply.\n\n" + "quoted text goes on " * 400},
                             {"role": "assistant", "content": reply}]}
    short_row = {"messages": [long_row["messages"][0], {"role": "user", "content": "Write a reply.\n\nquoted"},
                              long_row["messages"][2]]}
    cut = reply_perplexity(model, tok, [long_row], max_len=64)
    assert cut is not None and cut > 0
    assert cut != reply_perplexity(model, tok, [long_row], max_len=4096)  # the context was cut
    assert reply_perplexity(model, tok, [long_row], max_len=3) is None  # the reply alone does not fit
    assert reply_perplexity(model, tok, [short_row], max_len=64) == reply_perplexity(model, tok, [short_row])


def test_long_prompts_lose_quoted_context_as_training_rows_do(tiny):
    from mailvoice.chat import format_for
    from mailvoice.train.run import shorten_context

    model, tok = tiny
    fmt = format_for(tok)
    long_prompt = "Write a reply to Sam.\nSubject: Re: plan\n\nThe email you are replying to:\n" + "the plan moved again " * 300
    opts = GenOptions(max_new_tokens=6)

    def n_tokens(u):
        return len(tok(fmt.render_prompt(u, "Write an email."), add_special_tokens=False)["input_ids"])

    budget = n_tokens(PROMPTS[0]) + 5  # the short prompt fits as it is
    cut = shorten_context(long_prompt, lambda u: n_tokens(u) > budget)
    assert n_tokens(cut) <= budget and cut.endswith("[…]") and cut.startswith("Write a reply to Sam.\nSubject: Re: plan\n\n")
    got = generate(model, tok, [long_prompt, PROMPTS[0]], opts, system="Write an email.", max_prompt_tokens=budget)
    want = generate(model, tok, [cut, PROMPTS[0]], opts, system="Write an email.")
    assert [g["text"] for g in got] == [g["text"] for g in want]
