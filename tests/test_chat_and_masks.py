"""The one prompt definition renders what the base model's own template renders, and the loss
mask covers exactly the reply and its end token."""

import pytest

from mailvoice.chat import CHATML, SYSTEM_PROMPT, format_for, instruction_for, pad_token_for
from mailvoice.train.run import TokenizeStats, encode_pair, load_tokenizer, tokenize_rows


def _msgs(user="Write an email to Sam.\nSubject: Hi", reply="Hi Sam! Cheers,\nDana"):
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user},
        {"role": "assistant", "content": reply},
    ]


@pytest.mark.parametrize("which", ["tiny_model", "smollm2"])
def test_chatml_matches_the_models_own_template(which, request):
    path = request.getfixturevalue(which)
    tok, fmt = load_tokenizer(str(path))
    assert fmt is CHATML
    m = _msgs()
    ours = fmt.render_prompt(m[1]["content"], m[0]["content"]) + fmt.render_reply(m[2]["content"])
    theirs = tok.apply_chat_template(m, tokenize=False)
    assert theirs.startswith(ours)  # HF adds only the newline after the final <|im_end|>
    assert theirs[len(ours):] == "\n"
    ids, _ = encode_pair(tok, fmt, m[0]["content"], m[1]["content"], m[2]["content"])
    hf_ids = tok.apply_chat_template(m, tokenize=True)
    hf_ids = hf_ids["input_ids"] if isinstance(hf_ids, dict) or hasattr(hf_ids, "keys") else hf_ids
    assert ids == list(hf_ids)[: len(ids)]
    gen = tok.apply_chat_template(m[:2], tokenize=False, add_generation_prompt=True)
    assert gen == fmt.render_prompt(m[1]["content"], m[0]["content"])


def test_pad_is_not_the_end_token(tiny_model):
    tok, fmt = load_tokenizer(str(tiny_model))
    assert tok.pad_token != fmt.end_token
    assert tok.pad_token_id != tok.convert_tokens_to_ids(fmt.end_token)
    assert pad_token_for(tok) == "<|endoftext|>"


def test_loss_mask_covers_exactly_the_reply_and_end_token(tiny_model):
    tok, fmt = load_tokenizer(str(tiny_model))
    m = _msgs(reply="Morning Priya — quick thought: shade under the oak?\nCheers,\nDana")
    ids, labels = encode_pair(tok, fmt, m[0]["content"], m[1]["content"], m[2]["content"])
    assert len(ids) == len(labels)
    target = [i for i, l in zip(ids, labels) if l != -100]
    end_id = tok.convert_tokens_to_ids(fmt.end_token)
    assert target[-1] == end_id  # the end of the turn is learned: the model learns to stop
    assert tok.decode(target[:-1]) == m[2]["content"]
    prompt_len = labels.index(next(l for l in labels if l != -100))
    assert all(l == -100 for l in labels[:prompt_len])
    assert all(l != -100 for l in labels[prompt_len:])
    assert tok.decode(ids[:prompt_len]) == fmt.render_prompt(m[1]["content"], m[0]["content"])
    # joint tokenization gives the same ids as prompt + reply tokenized apart
    joint = tok(fmt.render_prompt(m[1]["content"], m[0]["content"]) + fmt.render_reply(m[2]["content"]), add_special_tokens=False)
    assert joint["input_ids"] == ids


def test_long_rows_lose_context_first_never_the_reply(tiny_model):
    tok, fmt = load_tokenizer(str(tiny_model))
    reply = "Hi Sam! no rush at all. Cheers,\nDana"
    long_ctx = instruction_for(subject="Re: plan", recipient="Sam", replying_to="garden stone order " * 300)
    stats = TokenizeStats()
    rows = tokenize_rows(tok, fmt, [{"messages": _msgs(long_ctx, reply)}], 160, stats)
    assert stats.context_truncated == 1 and stats.dropped_too_long == 0
    (row,) = rows
    assert len(row["input_ids"]) <= 160
    target = [i for i, l in zip(row["input_ids"], row["labels"]) if l != -100]
    assert tok.decode(target[:-1]) == reply


def test_reply_that_cannot_fit_is_dropped_and_counted(tiny_model):
    tok, fmt = load_tokenizer(str(tiny_model))
    stats = TokenizeStats()
    rows = tokenize_rows(tok, fmt, [{"messages": _msgs(reply="word " * 400)}], 64, stats)
    assert rows == [] and stats.dropped_too_long == 1


def test_format_detection_rejects_unknown_layouts(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    assert format_for(tok) is CHATML


def test_known_signatures_from_emailai_are_removed():
    from mailvoice.dataset.build import BuildStats, DatasetOptions, make_examples
    from mailvoice.sources.record import MailRecord

    sig_html = "<div><b>Dana Whitfield</b><br>Studio Lead, Willow Creek</div>"
    recs = [MailRecord(message_id=f"m{i}", thread_id=f"m{i}", date=None, from_addr="d@x.example",
                       text=f"Hi Sam! The stone order {i} is in, no rush at all.\n\nCheers,\nDana\n\nDana Whitfield\nStudio Lead, Willow Creek\n")
            for i in range(2)]
    stats = BuildStats()
    out = make_examples(recs, DatasetOptions(min_emails=1), stats, known_signatures=[sig_html])
    assert out and all("Studio Lead" not in e.output and e.output.endswith("Cheers,\nDana") for e in out)
