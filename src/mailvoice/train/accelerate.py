"""An accelerate FSDP config for QLoRA across GPUs (70B), following the documented recipe.

The recipe (PEFT docs, "FSDP + QLoRA"; Answer.AI): shard with FULL_SHARD and transformer-based
wrapping, ``use_orig_params`` (mixed trainable/frozen params), CPU-RAM-efficient loading with
``sync_module_states`` (only rank 0 reads the weights), a sharded state dict, and — set on the
model side in ``train.run.load_model`` — ``bnb_4bit_quant_storage`` equal to the compute dtype so
FSDP can flatten the 4-bit weights together with the bf16 ones.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..workspace import write_text

LAUNCH = "accelerate launch --config_file {config} -m mailvoice train --config {train_config}"


def fsdp_config(num_processes: int, *, mixed_precision: str = "bf16", layer_cls: str = "LlamaDecoderLayer") -> dict:
    return {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "distributed_type": "FSDP",
        "downcast_bf16": "no",
        "fsdp_config": {
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_transformer_layer_cls_to_wrap": layer_cls,
            "fsdp_backward_prefetch": "BACKWARD_PRE",
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_forward_prefetch": False,
            "fsdp_offload_params": False,
            "fsdp_sharding_strategy": "FULL_SHARD",
            "fsdp_state_dict_type": "SHARDED_STATE_DICT",
            "fsdp_sync_module_states": True,
            "fsdp_use_orig_params": True,
        },
        "machine_rank": 0,
        "main_training_function": "main",
        "mixed_precision": mixed_precision,
        "num_machines": 1,
        "num_processes": num_processes,
        "rdzv_backend": "static",
        "same_network": True,
        "use_cpu": False,
    }


def write_fsdp_config(path: Path, num_processes: int, **kw) -> Path:
    return write_text(Path(path), yaml.safe_dump(fsdp_config(num_processes, **kw), sort_keys=False))
