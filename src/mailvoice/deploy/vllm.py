"""``mailvoice deploy --target vllm``: the commands for a GPU host running vLLM with LoRA.

vLLM serves a base once and many LoRA adapters (PEFT folders, no conversion needed): at start
with ``vllm serve BASE --enable-lora --max-lora-rank R --lora-modules name=path …``, or at run
time (``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) with ``POST /v1/load_lora_adapter``
``{"lora_name", "lora_path"}`` and ``/v1/unload_lora_adapter``. Requests pick the user with
``model=emailai-<id>``. This writes ``vllm-serve.sh`` and ``vllm-load-lora.sh`` beside the
user's model; it runs nothing.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ..workspace import make_private_dir, write_text
from ..artifacts import Adapter
from .modelfile import model_name


def write_vllm(model: Path, user_id: str, space, *, host: str = "http://127.0.0.1:8000") -> dict:
    art = Adapter.open(model)
    adapter = art.path.absolute()
    base = art.base_hf_id
    rank = int(art.config.get("r", 16))
    max_rank = next(r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= rank)
    name = model_name(user_id)
    out = make_private_dir(space.models / name)
    serve = (
        f"vllm serve {shlex.quote(base)} --enable-lora --max-lora-rank {max_rank} --max-loras 4 "
        f"--lora-modules {shlex.quote(f'{name}={adapter}')}"
    )
    load = (
        f"curl -sS -X POST {host}/v1/load_lora_adapter -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps({'lora_name': name, 'lora_path': str(adapter)}))}"
    )
    unload = (
        f"curl -sS -X POST {host}/v1/unload_lora_adapter -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps({'lora_name': name}))}"
    )
    script = write_text(out / "vllm-serve.sh", f"#!/usr/bin/env bash\n# base {base}, adapter rank {rank}\nset -euo pipefail\nexec {serve} \"$@\"\n")
    write_text(
        out / "vllm-load-lora.sh",
        "#!/usr/bin/env bash\n# needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True on the server\nset -euo pipefail\n"
        f"{load}\n# to unload: {unload}\n",
    )
    return {"model": name, "base": base, "script": script, "serve": serve, "load": load, "unload": unload}
