"""The EmailAI app's settings for a deployed model (the guide's ``.env`` lines).

In EmailAI (calldatasystems/emailai ``apps/web/utils/llms/model.ts``) ``NEXT_PUBLIC_OLLAMA_MODEL``
is one global model: it serves **every** AI call of **every** user without their own API key —
rule matching, categorising, summaries and drafting. So the default set-up points EmailAI at
``mailvoice gateway`` (:func:`gateway_env`): ``OLLAMA_BASE_URL`` is the gateway's ``/api`` and
the model is the *base* model's Ollama name; the gateway answers the calls that write as a user
(draft, nudge) with that user's voice model and passes everything else to the base model.
:func:`single_user_env` (``deploy --single-user``) is the old one-model set-up, right only for
an installation with one user, and it says so. ``OLLAMA_MODEL`` is upstream's newer name for the
same setting; ``OLLAMA_BASE_URL`` keeps the ``/api`` suffix the app expects.

EmailAI's Ollama provider (``ollama-ai-provider``) sends no headers, so a gateway that needs a
token takes it in the URL path (``http://gateway:11435/t/<token>/api``, see ``gateway.app``) or
behind a reverse proxy that adds ``Authorization`` (docs/gateway.md). The token is never printed:
the lines show ``<token>`` where it goes.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ..workspace import write_text
from .ollama import normalise_url

GATEWAY_URL = "http://127.0.0.1:11435"
TOKEN_ENV = "MAILVOICE_GATEWAY_TOKEN"
SINGLE_USER_WARNING = (
    "single-user set-up: EmailAI sends EVERY AI call of EVERY user (rule matching, categorising, "
    "summaries, drafts) to this one voice model; use it only when this EmailAI has one user. "
    "Leave out --single-user for the gateway set-up (drafts in each user's voice, the rest on the base model).")


def gateway_base(gateway_url: str | None) -> str:
    """The gateway's root URL (no ``/api``); a bare ``host:port`` is plain HTTP."""
    url = (gateway_url or GATEWAY_URL).strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url[: -len("/api")] if url.endswith("/api") else url


def needs_token(gateway_url: str | None) -> bool:
    from ..gateway.app import is_loopback

    return not is_loopback(urlsplit(gateway_base(gateway_url)).hostname or "")


def gateway_env(base_model: str, gateway_url: str | None = None) -> dict[str, str]:
    """EmailAI → the gateway, the base model as the app's one model (the default set-up)."""
    base = gateway_base(gateway_url)
    if needs_token(gateway_url):  # EmailAI sends no headers: the token goes in the path
        scheme, rest = base.split("://", 1)
        host, sep, path = rest.partition("/")
        base = f"{scheme}://{host}/t/<token>{sep}{path}"
    return {
        "DEFAULT_LLM_PROVIDER": "ollama",
        "OLLAMA_BASE_URL": base + "/api",
        "NEXT_PUBLIC_OLLAMA_MODEL": base_model,
        "OLLAMA_MODEL": base_model,
    }


def single_user_env(model: str, ollama_url: str | None) -> dict[str, str]:
    """EmailAI → Ollama, the voice model as the app's one model (``--single-user``)."""
    return {
        "DEFAULT_LLM_PROVIDER": "ollama",
        "OLLAMA_BASE_URL": normalise_url(ollama_url) + "/api",
        "NEXT_PUBLIC_OLLAMA_MODEL": model,
        "OLLAMA_MODEL": model,
    }


def gateway_command(ollama_url: str | None, gateway_url: str | None = None) -> str:
    """The ``mailvoice gateway`` line that serves :func:`gateway_env`'s URL."""
    p = urlsplit(gateway_base(gateway_url))
    host = p.hostname or "127.0.0.1"
    cmd = f"mailvoice gateway --upstream {normalise_url(ollama_url)}"
    if host not in ("127.0.0.1", "localhost"):
        cmd += " --host 0.0.0.0"
    if p.port and p.port != 11435:
        cmd += f" --port {p.port}"
    if needs_token(gateway_url):
        cmd += f" --token-env {TOKEN_ENV}"
    return cmd


def env_lines(model: str, ollama_url: str | None, *, setup: str = "gateway", base_model: str | None = None,
              gateway_url: str | None = None) -> dict[str, str]:
    """The ``.env`` settings for ``setup`` = ``gateway`` (default) or ``single-user``."""
    if setup == "single-user":
        return single_user_env(model, ollama_url)
    return gateway_env(base_model or "<the base model's Ollama name>", gateway_url)


def with_token(values: dict[str, str], env=None) -> dict[str, str]:
    """``values`` with ``<token>`` replaced by ``$MAILVOICE_GATEWAY_TOKEN`` when it is set: for the
    0600 ``.env`` file only, never for what is printed."""
    import os

    token = (os.environ if env is None else env).get(TOKEN_ENV)
    if not token:
        return values
    return {k: v.replace("/t/<token>/", f"/t/{token}/") for k, v in values.items()}


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
