"""Llama 3.x: training, evaluation and the Ollama TEMPLATE render the same tokens as the real
Llama 3.1 chat template (taken from the llama.cpp tree the tools step caches)."""

import sys
from pathlib import Path

import pytest

from mailvoice.chat import CHATML, LLAMA3, SYSTEM_PROMPT, format_for

sys.path.insert(0, str(Path(__file__).parent))
from fakes.gotemplate import generate_messages, render  # noqa: E402

SPECIALS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|finetune_right_pad_id|>"]


def _llama31_template() -> str | None:
    roots = [Path.home() / ".cache" / "mailvoice" / "llama.cpp"]
    for root in roots:
        for p in sorted(root.glob("**/models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja")):
            return p.read_text()
    return None


@pytest.fixture(scope="module")
def llama3_tokenizer(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([SYSTEM_PROMPT, "Cutting Knowledge Date: December 2023 Today Date: 26 Jul 2024",
                             "Write a reply to Sam. Hi Sam! Cheers, Dana"] * 20,
                            trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, show_progress=False,
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                  pad_token="<|finetune_right_pad_id|>")
    tpl = _llama31_template()
    if tpl is None:
        pytest.skip("Llama 3.1 chat template not cached: run `mailvoice tools install` (the test bootstrap does)")
    tok.chat_template = tpl
    return tok


MSGS = [
    {"role": "system", "content": SYSTEM_PROMPT},
    {"role": "user", "content": "Write a reply to Sam.\nSubject: Re: visit\n\nThe email you are replying to:\nCan we move it?"},
    {"role": "assistant", "content": "Hi Sam! No rush at all.\n\nCheers,\nDana"},
]


def test_training_render_equals_the_llama31_template(llama3_tokenizer):
    tok = llama3_tokenizer
    assert format_for(tok) is LLAMA3
    ours = LLAMA3.render_prompt(MSGS[1]["content"], MSGS[0]["content"]) + LLAMA3.render_reply(MSGS[2]["content"])
    theirs = tok.apply_chat_template(MSGS, tokenize=False)
    assert ours == theirs
    assert tok(ours, add_special_tokens=False)["input_ids"] == tok(theirs, add_special_tokens=False)["input_ids"]
    gen = tok.apply_chat_template(MSGS[:2], tokenize=False, add_generation_prompt=True)
    assert LLAMA3.render_prompt(MSGS[1]["content"], MSGS[0]["content"]) == gen


@pytest.mark.parametrize("fmt", [LLAMA3, CHATML], ids=lambda f: f.name)
def test_ollama_template_renders_what_training_rendered(fmt):
    """Ollama adds BOS itself (llama.cpp's add_bos), so its TEMPLATE starts after it."""
    # as Ollama's /api/generate collates it: the SYSTEM is also a message in .Messages
    served = render(fmt.ollama_template, generate_messages(MSGS[1]["content"], system=None, model_system=SYSTEM_PROMPT))
    trained = fmt.render_prompt(MSGS[1]["content"], SYSTEM_PROMPT)
    assert served == trained.removeprefix("<|begin_of_text|>")
