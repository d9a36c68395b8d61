"""The EmailAI app's settings for a deployed model (the guide's ``.env`` lines).

``OLLAMA_BASE_URL`` keeps the ``/api`` suffix the app expects; ``NEXT_PUBLIC_OLLAMA_MODEL`` is
the fork's global model setting and ``OLLAMA_MODEL`` upstream's newer name for the same thing.
"""

from __future__ import annotations

from pathlib import Path

from ..workspace import write_text
from .ollama import normalise_url


def env_lines(model: str, ollama_url: str | None) -> dict[str, str]:
    return {
        "DEFAULT_LLM_PROVIDER": "ollama",
        "OLLAMA_BASE_URL": normalise_url(ollama_url) + "/api",
        "NEXT_PUBLIC_OLLAMA_MODEL": model,
        "OLLAMA_MODEL": model,
    }


def render_env(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def update_env_file(path: Path, values: dict[str, str]) -> Path:
    """Set these keys in an existing .env (other lines kept, in order) or create it (0600)."""
    path = Path(path)
    lines = path.read_text().splitlines() if path.is_file() else []
    seen = set()
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip().removeprefix("export ").strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key in values:
            if key not in seen:
                out.append(f"{key}={values[key]}")
                seen.add(key)
            continue
        out.append(line)
    out += [f"{k}={v}" for k, v in values.items() if k not in seen]
    return write_text(path, "\n".join(out) + "\n")
