"""GPU throughput of our LoRA recipe on a random-initialised model with Llama-3.1-8B's config.

No weights are downloaded: the config is written out here (it is public and small). The run is
our trainer's shape of work — LoRA r16 on all seven projections, bf16, padding-free packed rows
with per-example position ids, loss on the reply part — and it prints tokens/s and the model
FLOPs utilisation (MFU = 6 · params · tokens/s ÷ peak, plus attention FLOPs).

    python bench/gpu_throughput.py [--steps 20] [--rows 8] [--row-len 512] [--peak-tflops 989]

Record the result in docs/benchmarks.md with the date and the card.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

LLAMA31_8B = dict(
    vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
    rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False,
    rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192, "rope_type": "llama3"},
)

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.0}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rows", type=int, default=8, help="rows packed into one step")
    ap.add_argument("--row-len", type=int, default=512)
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("error: bench/gpu_throughput.py needs a CUDA GPU", file=sys.stderr)
        return 2
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(**LLAMA31_8B)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.config.use_cache = False
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    n_params = sum(p.numel() for p in model.parameters())
    tokens = args.rows * args.row_len
    ids = torch.randint(0, cfg.vocab_size, (1, tokens), device="cuda")
    pos = torch.arange(args.row_len, device="cuda").repeat(args.rows)[None]
    labels = ids.clone()
    labels[:, :: args.row_len] = -100  # first token of each row (TRL masks it too)

    def step():
        loss = model(input_ids=ids, position_ids=pos, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    dt = time.time() - t0
    tok_s = tokens * args.steps / dt
    name = torch.cuda.get_device_name(0)
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    attn = 12 * cfg.num_hidden_layers * cfg.hidden_size * args.row_len  # per token, fwd+bwd, causal ≈ /2 ignored
    flops_per_token = 6 * n_params + attn
    res = {
        "device": name,
        "tokens_per_step": tokens,
        "steps": args.steps,
        "tokens_per_s": round(tok_s, 1),
        "step_s": round(dt / args.steps, 4),
        "params": n_params,
        "model_tflops_per_s": round(flops_per_token * tok_s / 1e12, 1),
        "mfu": round(flops_per_token * tok_s / (peak * 1e12), 4) if peak else None,
        "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "torch": torch.__version__,
    }
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
