"""``mailvoice serve``: many users on one shared base (the guide's multi-user option 2).

One ``llama-server`` holds the base GGUF once and every user's GGUF LoRA
(``--lora a.gguf --lora b.gguf --lora-init-without-apply``). In front of it, a small
OpenAI-compatible endpoint: ``POST /v1/chat/completions`` / ``/v1/completions`` with
``model=emailai-<id>`` set that user's adapter to scale 1 and every other to 0 *per request*
(always the full list, never relying on a default), and prompts are rendered with the same
TEMPLATE Ollama gets, so the layout is the training layout. ``GET /v1/models`` lists the users.
The KV cache is never reused across requests (``cache_prompt: false``): a cache filled under one
user's adapter is not valid for another's.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import uuid
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..chat import FORMATS
from ..errors import MailvoiceError
from ..workspace import make_private_dir, resolve_root
from .llama_server import LlamaServer
from .modelfile import EMAIL_PARAMETERS


def shared_base_gguf(base_path: Path, root: Path, outtype: str = "f16") -> Path:
    """The base as one GGUF, converted once per base and cached in the workspace."""
    from ..tools import require_toolchain
    from .gguf import convert_hf

    cfg = (Path(base_path) / "config.json").read_bytes()
    key = hashlib.sha256(cfg + str(Path(base_path).absolute()).encode()).hexdigest()[:16]
    out = make_private_dir(Path(root) / ".shared") / f"base-{key}-{outtype}.gguf"
    if not out.is_file():
        convert_hf(require_toolchain(binaries=()), Path(base_path), out, outtype=outtype)
    return out


class MultiUserServer:
    """The llama-server backend plus the OpenAI-compatible front, on the gateway's ASGI stack
    (Starlette + uvicorn, in a thread so ``with`` / ``wait`` work as before)."""

    def __init__(self, base_gguf: Path, loras: dict[str, Path], *, chat_format: str = "chatml",
                 host: str = "127.0.0.1", port: int = 8080, threads: int | None = None, llama_server: Path | None = None):
        if not loras:
            raise MailvoiceError("no users to serve: deploy at least one user first (it writes their GGUF LoRA)")
        from ..tools import require_toolchain

        self.models = list(loras)
        self.fmt = FORMATS[chat_format]
        binary = llama_server or require_toolchain(binaries=("llama-server",), converters=False).bin("llama-server")
        self.backend = LlamaServer(binary, base_gguf, loras=list(loras.values()), threads=threads)
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    @classmethod
    def from_workspace(cls, root=None, *, user_ids: list[str] | None = None, base_outtype: str = "f16", **kw) -> MultiUserServer:
        from . import registry

        records = [registry.load(u, root) for u in user_ids] if user_ids else [r for r in registry.list_all(root) if r.get("lora_gguf")]
        records = [r for r in records if r.get("lora_gguf") and Path(r["lora_gguf"]).is_file()]
        if not records:
            raise MailvoiceError("no deployed user has a GGUF LoRA; run `mailvoice deploy` first")
        bases = {r["base_path"] for r in records}
        if len(bases) != 1:
            raise MailvoiceError(f"base mismatch: these users were trained on different bases ({len(bases)}); serve one base at a time")
        fmts = {r["chat_format"] for r in records}
        if len(fmts) != 1:
            raise MailvoiceError("users with different chat formats cannot share one base")
        base = shared_base_gguf(Path(bases.pop()), resolve_root(root), base_outtype)
        return cls(base, {r["model"]: Path(r["lora_gguf"]) for r in records}, chat_format=fmts.pop(), **kw)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MultiUserServer:
        # The port first: a taken one fails at once, before the model is loaded.
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            raise MailvoiceError(f"cannot listen on {self.host}:{self.port}: {e.strerror}") from None
        self.port = sock.getsockname()[1]
        try:
            self.backend.start()
        except BaseException:
            sock.close()
            raise
        # log_config=None, as the gateway: uvicorn's dictConfig would close the handlers already set up.
        config = uvicorn.Config(self.app(), access_log=False, log_level="warning", log_config=None)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise MailvoiceError(f"cannot serve on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join()
            self._server = self._thread = None
        self.backend.stop()
        self._done.set()

    def wait(self) -> None:
        try:
            while not self._done.wait(1):
                pass
        except KeyboardInterrupt:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---------------------------------------------------------------------------------------
    def lora_for(self, model: str) -> list[dict]:
        idx = self.models.index(model)
        return [{"id": i, "scale": 1.0 if i == idx else 0.0} for i in range(len(self.models))]

    def prompt_for(self, messages: list[dict]) -> str:
        """The prompt Ollama would render from the shipped TEMPLATE (``chat.py``'s one layout)."""
        return self.fmt.render_chat(messages)

    def generate(self, model: str, prompt: str, body: dict) -> dict:
        opts = {}
        for src, dst in (("top_p", "top_p"), ("seed", "seed"), ("frequency_penalty", "frequency_penalty"),
                         ("presence_penalty", "presence_penalty")):
            if body.get(src) is not None:
                opts[dst] = body[src]
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        return self.backend.complete(
            prompt, n_predict=int(body.get("max_tokens") or body.get("max_completion_tokens") or EMAIL_PARAMETERS["num_predict"]),
            lora=self.lora_for(model), stop=list(self.fmt.stop) + stop,
            temperature=float(body.get("temperature", EMAIL_PARAMETERS["temperature"])), options=opts,
        )

    # --------------------------------------------------------------------------------- HTTP
    def app(self) -> Starlette:
        """The OpenAI-compatible front (no access log: requests carry prompts)."""
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST"])])

    async def handle(self, request: Request) -> JSONResponse:
        path = request.url.path
        if request.method == "GET":
            if path in ("/v1/models", "/models"):
                return JSONResponse({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "mailvoice"} for m in self.models]})
            if path == "/health":
                return JSONResponse({"status": "ok"})
            return _error(404, "not found", "not_found")
        try:
            body = json.loads(await request.body() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "request body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object")
        model = body.get("model")
        if model not in self.models:
            return _error(404, f"model {model!r} not found; known: {', '.join(self.models)}", "model_not_found")
        if body.get("stream"):
            return _error(400, "stream=true is not supported by mailvoice serve")
        if path in ("/v1/chat/completions", "/chat/completions"):
            msgs = body.get("messages")
            if not isinstance(msgs, list) or not msgs:
                return _error(400, "messages must be a non-empty list")
            prompt, chat = self.prompt_for(msgs), True
        elif path in ("/v1/completions", "/completions"):
            prompt, chat = body.get("prompt", ""), False
        else:
            return _error(404, "not found", "not_found")
        try:
            r = await run_in_threadpool(self.generate, model, prompt, body)
        except MailvoiceError as e:
            return _error(502, str(e), "backend_error")
        reason = "length" if r.get("stop_type") == "limit" else "stop"
        choice = {"index": 0, "finish_reason": reason}
        if chat:
            choice["message"] = {"role": "assistant", "content": r.get("content", "")}
        else:
            choice["text"] = r.get("content", "")
        return JSONResponse({
            "id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24],
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": model, "choices": [choice],
            "usage": {"prompt_tokens": r.get("tokens_evaluated", 0), "completion_tokens": r.get("tokens_predicted", 0),
                      "total_tokens": r.get("tokens_evaluated", 0) + r.get("tokens_predicted", 0)},
            "mailvoice": {"tokens": r.get("tokens", [])},
        })


def _error(status: int, msg: str, code: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": msg, "type": "invalid_request_error", "code": code}}, status_code=status)
