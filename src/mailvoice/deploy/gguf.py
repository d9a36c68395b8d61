"""PEFT adapter → GGUF: merge into the 16-bit base, convert, quantize; or a GGUF LoRA.

Merging always happens on the full-precision base (fp32/fp16/bf16, never a 4-bit one: a LoRA
fitted on a quantized base merged into full weights, or the other way round, is not the function
that was trained). Conversion uses llama.cpp's own ``convert_hf_to_gguf.py`` /
``convert_lora_to_gguf.py`` with the tree's ``gguf-py``; K-quants need ``llama-quantize``.
Outputs are written under a temporary name and renamed when complete, so a failed or
interrupted conversion (a full disk included) leaves no half-written GGUF behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import ADAPTER_WEIGHTS, Adapter
from ..errors import MailvoiceError
from ..models import hf_id_of
from ..tools import Toolchain
from ..workspace import FILE_MODE, make_private_dir

QUANTS = {"q4_K_M": "Q4_K_M", "q8_0": "Q8_0", "f16": "F16", "f32": "F32"}
DEFAULT_QUANT = "q4_K_M"


@dataclass
class BaseInfo:
    path: Path
    hf_id: str
    config: dict


def normalise_quant(q: str | None) -> str:
    q = q or DEFAULT_QUANT
    for k in QUANTS:
        if q.lower() == k.lower():
            return k
    raise MailvoiceError(f"unknown --quantize {q!r}: use q4_K_M, q8_0 or f16")


def resolve_base(adapter: Path | Adapter) -> BaseInfo:
    """The base the adapter was trained on, as a local folder with config.json; checked."""
    art = adapter if isinstance(adapter, Adapter) else Adapter.open(adapter)
    adapter = art.path
    base = art.base
    p = Path(base)
    if not (p / "config.json").is_file():
        raise MailvoiceError(
            f"base model {base} is not a local folder with config.json; deploy works offline and needs the base the adapter was trained on"
        )
    cfg = json.loads((p / "config.json").read_text())
    q = cfg.get("quantization_config") or {}
    if q.get("load_in_4bit") or q.get("load_in_8bit") or q.get("quant_method") in ("bitsandbytes", "gptq", "awq"):
        raise MailvoiceError(f"base {p} is quantized ({q.get('quant_method', '4-bit')}); merging needs the 16-bit base it was trained from")
    want = art.summary.get("base_hf_id")
    have = hf_id_of(str(p))
    if want and have != str(p) and have != want:
        raise MailvoiceError(f"base mismatch: the adapter was trained on {want}, but {p} is {have}")
    _check_shapes(adapter, cfg, art.config)
    return BaseInfo(path=p.absolute(), hf_id=want or have, config=cfg)


def _check_shapes(adapter: Path, cfg: dict, acfg: dict) -> None:
    """Catch an adapter trained on another base before minutes of merging: LoRA A/B widths."""
    st = adapter / ADAPTER_WEIGHTS[0]
    if not st.is_file():
        raise MailvoiceError(f"{adapter}: adapter_model.safetensors is missing")
    from safetensors import safe_open

    hidden = cfg.get("hidden_size")
    layers = cfg.get("num_hidden_layers")
    with safe_open(str(st), "pt") as f:
        for key in f.keys():
            if "q_proj.lora_A" in key:
                width = f.get_slice(key).get_shape()[1]
                if hidden and width != hidden:
                    raise MailvoiceError(f"base mismatch: adapter expects hidden size {width}, base has {hidden}")
            if ".layers." in key and layers:
                idx = int(key.split(".layers.")[1].split(".")[0])
                if idx >= layers:
                    raise MailvoiceError(f"base mismatch: adapter has layer {idx}, base has {layers} layers")


def check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise MailvoiceError(f"not enough disk space in {folder}: {needed / 2**30:.2f} GiB needed, {free / 2**30:.2f} GiB free")


def weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).glob("*.safetensors")) or sum(
        p.stat().st_size for p in Path(folder).glob("*.bin")
    )


def _run_converter(tc: Toolchain, script: str, args: list[str], what: str) -> None:
    cmd = [sys.executable, "-m", "mailvoice.deploy._convert", str(tc.tree), script, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=tc.python_env())
    if r.returncode != 0:
        _raise_tool_error(what, r)


def _raise_tool_error(what: str, r: subprocess.CompletedProcess) -> None:
    text = (r.stderr or "") + (r.stdout or "")
    if "No space left on device" in text or "ENOSPC" in text:
        raise MailvoiceError(f"disk full while {what}; free some space and run deploy again (nothing was registered)")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    err = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "no output")
    raise MailvoiceError(f"{what} failed: {err[:300]}")


def _finish(tmp: Path, final: Path) -> Path:
    if not tmp.is_file() or tmp.stat().st_size == 0:
        raise MailvoiceError(f"{final.name} was not written")
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, final)
    return final


def _tmp(final: Path) -> Path:
    """A fresh temporary name beside ``final`` (renamed over it only when complete)."""
    for stale in final.parent.glob(f".{final.name}.*.part"):
        stale.unlink(missing_ok=True)  # left by a killed run
    return final.with_name(f".{final.name}.{os.getpid()}.{os.urandom(3).hex()}.part")


def merge_adapter(adapter: Path, base: BaseInfo, out: Path) -> Path:
    """HF + PEFT ``merge_and_unload`` on the full-precision base → a plain HF folder."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_free_space(out.parent, 2 * weights_bytes(base.path) + (64 << 20))
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(str(base.config.get("torch_dtype") or base.config.get("dtype")), torch.float32)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=dtype)
        tuned = PeftModel.from_pretrained(model, str(adapter))
    except RuntimeError as e:
        if "size mismatch" in str(e):
            raise MailvoiceError("base mismatch: the adapter's tensor shapes do not fit the base model") from None
        raise
    merged = tuned.merge_and_unload()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        merged.save_pretrained(str(tmp), safe_serialization=True)
        AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(tmp))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno == errno.ENOSPC:
            raise MailvoiceError("disk full while merging the adapter; free some space and run deploy again") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def pin_special_token_flags(folder: Path, tok) -> None:
    """Write what the HF tokenizer really does about BOS/EOS into tokenizer_config.json, so the
    GGUF's ``add_bos_token`` matches training instead of llama.cpp's per-vocab default."""
    ids = tok("a").input_ids
    cfg_path = Path(folder) / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    cfg["add_bos_token"] = bool(tok.bos_token_id is not None and ids[:1] == [tok.bos_token_id])
    cfg["add_eos_token"] = bool(tok.eos_token_id is not None and ids[-1:] == [tok.eos_token_id])
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))


def convert_hf(tc: Toolchain, model_dir: Path, outfile: Path, outtype: str = "f16", name: str | None = None) -> Path:
    """A HF folder → GGUF (f32/f16/bf16/q8_0) with llama.cpp's convert_hf_to_gguf.py."""
    make_private_dir(outfile.parent)
    check_free_space(outfile.parent, int(weights_bytes(model_dir) * (1.1 if outtype == "f32" else 0.6)) + (16 << 20))
    tmp = _tmp(outfile)
    try:
        extra = ["--model-name", name] if name else []
        with _pinned_view(model_dir, outfile.parent) as view:
            _run_converter(tc, "convert_hf_to_gguf.py", [str(view), "--outfile", str(tmp), "--outtype", outtype, *extra],
                           "converting the model to GGUF")
        return _finish(tmp, outfile)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _pinned_view(model_dir: Path, near: Path):
    """The model folder as symlinks, with tokenizer_config.json pinned (see pin_special_token_flags):
    the user's base folder itself is never modified."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix=".view.", dir=near) as d:
        view = Path(d)
        for f in Path(model_dir).iterdir():
            if f.is_file() and f.name != "tokenizer_config.json":
                (view / f.name).symlink_to(f.absolute())
        if (Path(model_dir) / "tokenizer_config.json").is_file():
            shutil.copy(Path(model_dir) / "tokenizer_config.json", view / "tokenizer_config.json")
        pin_special_token_flags(view, AutoTokenizer.from_pretrained(str(model_dir)))
        yield view


def convert_lora(tc: Toolchain, adapter: Path, base: BaseInfo, outfile: Path, outtype: str = "f32") -> Path:
    """A PEFT adapter → GGUF LoRA. ``--base`` gets a folder with only the base's config.json
    (and tokenizer config), so the converter never reaches for the Hub."""
    make_private_dir(outfile.parent)
    tmp = _tmp(outfile)
    with tempfile.TemporaryDirectory(prefix=".lora-base.", dir=outfile.parent) as cfgdir:
        for name in ("config.json", "tokenizer_config.json", "generation_config.json"):
            if (base.path / name).is_file():
                shutil.copy(base.path / name, Path(cfgdir) / name)
        try:
            _run_converter(
                tc, "convert_lora_to_gguf.py",
                [str(adapter), "--base", cfgdir, "--outfile", str(tmp), "--outtype", outtype],
                "converting the adapter to a GGUF LoRA",
            )  # fmt: skip
            return _finish(tmp, outfile)
        finally:
            tmp.unlink(missing_ok=True)


def quantize(tc: Toolchain, src: Path, dst: Path, quant: str) -> Path:
    """llama-quantize src → dst (Q4_K_M, Q8_0, …)."""
    check_free_space(dst.parent, src.stat().st_size + (16 << 20))
    tmp = _tmp(dst)
    try:
        r = subprocess.run([str(tc.bin("llama-quantize")), str(src), str(tmp), QUANTS[quant]], capture_output=True, text=True)
        if r.returncode != 0:
            _raise_tool_error(f"quantizing to {QUANTS[quant]}", r)
        return _finish(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def gguf_file_type(path: Path) -> str:
    """The GGUF's ``general.file_type`` as a name (read with the gguf package)."""
    from gguf import GGUFReader, LlamaFileType

    r = GGUFReader(str(path))
    field = r.fields.get("general.file_type")
    if field is None:
        return "unknown"
    v = int(field.parts[field.data[0]][0])
    try:
        return LlamaFileType(v).name.removeprefix("MOSTLY_")
    except ValueError:
        return str(v)
