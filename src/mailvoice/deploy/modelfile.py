"""Ollama Modelfiles and deploy artefacts built from the one chat definition.

The TEMPLATE and stop tokens come from ``chat.ChatFormat``, the same object training rendered
with, so Ollama serves exactly the layout the adapter learned. Sampling defaults are chosen for
email (focused, a little variety, no loops), not the creative-writing values some exporters use.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..artifacts import Adapter
from ..chat import SYSTEM_PROMPT, ChatFormat
from ..workspace import make_private_dir, privatise_tree, write_json, write_text

# Hugging Face base id → Ollama tag of the same, non-quantized weights (an adapter must sit on
# the base it was trained on; a q4 base changes the function the LoRA was fitted to).
OLLAMA_BASE_TAGS = {
    "meta-llama/Llama-3.1-8B-Instruct": "llama3.1:8b-instruct-fp16",
    "meta-llama/Meta-Llama-3.1-8B-Instruct": "llama3.1:8b-instruct-fp16",
    "meta-llama/Llama-3.3-70B-Instruct": "llama3.3:70b-instruct-fp16",
    "meta-llama/Llama-3.2-3B-Instruct": "llama3.2:3b-instruct-fp16",
    "meta-llama/Llama-3.2-1B-Instruct": "llama3.2:1b-instruct-fp16",
    "HuggingFaceTB/SmolLM2-135M-Instruct": "smollm2:135m-instruct-fp16",
    "HuggingFaceTB/SmolLM2-360M-Instruct": "smollm2:360m-instruct-fp16",
    "HuggingFaceTB/SmolLM2-1.7B-Instruct": "smollm2:1.7b-instruct-fp16",
}

EMAIL_PARAMETERS = {
    "temperature": 0.7,
    "top_p": 0.9,
    "repeat_penalty": 1.1,
    "num_ctx": 4096,
    "num_predict": 512,
}


def serving_template(fmt: ChatFormat) -> str:
    """The TEMPLATE to ship: ``chat.py``'s. Ollama passes system messages both as ``.System`` and
    inside ``.Messages`` (template.collate), so it skips them inside the range; tests render it
    under Ollama's rules (tests/fakes/gotemplate.py) and compare with the training layout."""
    return fmt.ollama_template


def ollama_parameters(fmt: ChatFormat) -> dict:
    """``parameters`` for /api/create: stop tokens from the chat definition + email sampling."""
    return {"stop": list(fmt.stop), **EMAIL_PARAMETERS}


def model_name(user_id: str) -> str:
    return f"emailai-{user_id.lower()}"


def ollama_tag_for(hf_id: str) -> str | None:
    return OLLAMA_BASE_TAGS.get(hf_id)


def render_modelfile(*, from_: str, fmt: ChatFormat, adapter: str | None = None, system: str = SYSTEM_PROMPT,
                     template: str | None = None) -> str:
    lines = [f"FROM {from_}"]
    if adapter:
        lines.append(f"ADAPTER {adapter}")
    lines.append(f'TEMPLATE """{template if template is not None else fmt.ollama_template}"""')
    lines.append(f'SYSTEM """{system}"""')
    for stop in fmt.stop:
        lines.append(f'PARAMETER stop "{stop}"')
    for k, v in EMAIL_PARAMETERS.items():
        lines.append(f"PARAMETER {k} {v}")
    return "\n".join(lines) + "\n"


@dataclass
class DeployArtefacts:
    out_dir: Path
    model_name: str
    adapter_dir: Path
    modelfile: Path
    gguf: Path | None
    manifest: Path


def write_artefacts(adapter: Path, user_id: str, out_root: Path, *, gguf: Path | None = None) -> DeployArtefacts:
    """Copy the PEFT adapter beside a Modelfile that uses it; nothing touches a server here."""
    art = Adapter.open(adapter)
    adapter, summary, fmt = art.path, art.summary, art.chat_format
    name = model_name(user_id)
    out = make_private_dir(Path(out_root) / name)
    adapter_out = out / "adapter"
    tmp = out / ".adapter.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(adapter, tmp)
    if adapter_out.exists():
        shutil.rmtree(adapter_out)
    tmp.rename(adapter_out)
    privatise_tree(adapter_out)
    hf_id = summary.get("base_hf_id", "")
    base_tag = ollama_tag_for(hf_id) or hf_id or "BASE-MODEL"
    ref = str(gguf.absolute()) if gguf else str(adapter_out.absolute())
    modelfile = write_text(out / "Modelfile", render_modelfile(from_=base_tag, fmt=fmt, adapter=ref))
    manifest = write_json(
        out / "artefacts.json",  # not deploy.json: that file is the registry of real deploys
        {
            "model": name,
            "user_id": user_id,
            "base_hf_id": hf_id,
            "ollama_base": base_tag,
            "chat_format": fmt.name,
            "adapter": str(adapter_out),
            "gguf": str(gguf) if gguf else None,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    return DeployArtefacts(out, name, adapter_out, modelfile, gguf, manifest)
