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
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..chat import FORMATS, SYSTEM_PROMPT
from ..errors import MailvoiceError
from ..workspace import make_private_dir, resolve_root
from .gotemplate import chat_messages, render
from .llama_server import LlamaServer
from .modelfile import BOS, EMAIL_PARAMETERS, serving_template


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
    def __init__(self, base_gguf: Path, loras: dict[str, Path], *, chat_format: str = "chatml",
                 host: str = "127.0.0.1", port: int = 8080, threads: int | None = None, llama_server: Path | None = None):
        if not loras:
            raise MailvoiceError("no users to serve: deploy at least one user first (it writes their GGUF LoRA)")
        from ..tools import require_toolchain

        self.models = list(loras)
        self.fmt = FORMATS[chat_format]
        self.template = serving_template(self.fmt)
        binary = llama_server or require_toolchain(binaries=("llama-server",), converters=False).bin("llama-server")
        self.backend = LlamaServer(binary, base_gguf, loras=list(loras.values()), threads=threads)
        self.host, self.port = host, port
        self.httpd: ThreadingHTTPServer | None = None
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
        return f"http://{self.host}:{self.httpd.server_address[1] if self.httpd else self.port}"

    def start(self) -> MultiUserServer:
        self.backend.start()
        srv = self

        class Handler(_Handler):
            server_ref = srv

        try:
            self.httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as e:
            self.backend.stop()
            raise MailvoiceError(f"cannot listen on {self.host}:{self.port}: {e.strerror}") from None
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
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
        return BOS.get(self.fmt.name, "") + render(self.template, chat_messages(messages, model_system=SYSTEM_PROMPT))

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


class _Handler(BaseHTTPRequestHandler):
    server_ref: MultiUserServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # never log prompts
        pass

    def _send(self, status: int, obj: dict):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, msg: str, code: str = "invalid_request_error"):
        self._send(status, {"error": {"message": msg, "type": "invalid_request_error", "code": code}})

    def do_GET(self):
        s = self.server_ref
        if self.path in ("/v1/models", "/models"):
            return self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "mailvoice"} for m in s.models]})
        if self.path == "/health":
            return self._send(200, {"status": "ok"})
        self._error(404, "not found", "not_found")

    def do_POST(self):
        s = self.server_ref
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        except json.JSONDecodeError:
            return self._error(400, "request body is not JSON")
        model = body.get("model")
        if model not in s.models:
            return self._error(404, f"model {model!r} not found; known: {', '.join(s.models)}", "model_not_found")
        if body.get("stream"):
            return self._error(400, "stream=true is not supported by mailvoice serve")
        if self.path in ("/v1/chat/completions", "/chat/completions"):
            msgs = body.get("messages")
            if not isinstance(msgs, list) or not msgs:
                return self._error(400, "messages must be a non-empty list")
            prompt, chat = s.prompt_for(msgs), True
        elif self.path in ("/v1/completions", "/completions"):
            prompt, chat = body.get("prompt", ""), False
        else:
            return self._error(404, "not found", "not_found")
        try:
            r = s.generate(model, prompt, body)
        except MailvoiceError as e:
            return self._error(502, str(e), "backend_error")
        reason = "length" if r.get("stop_type") == "limit" else "stop"
        choice = {"index": 0, "finish_reason": reason}
        if chat:
            choice["message"] = {"role": "assistant", "content": r.get("content", "")}
        else:
            choice["text"] = r.get("content", "")
        self._send(200, {
            "id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24],
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": model, "choices": [choice],
            "usage": {"prompt_tokens": r.get("tokens_evaluated", 0), "completion_tokens": r.get("tokens_predicted", 0),
                      "total_tokens": r.get("tokens_evaluated", 0) + r.get("tokens_predicted", 0)},
            "mailvoice": {"tokens": r.get("tokens", [])},
        })
