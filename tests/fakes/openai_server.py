"""A fake chat endpoint in a thread (stdlib ``http.server``): OpenAI-compatible and Ollama ``/api/chat``.

Shapes followed:

- ``GET /v1/models`` → ``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}``.
- ``POST /v1/chat/completions`` ``{model, messages, ...}`` → ``{"id": "chatcmpl-…", "object":
  "chat.completion", "created", "model", "choices": [{"index": 0, "message": {"role":
  "assistant", "content"}, "logprobs": null, "finish_reason": "stop"}], "usage": {prompt_tokens,
  completion_tokens, total_tokens}}``; a bad request → 400 ``{"error": {"message", "type", ...}}``.
- ``GET /api/tags`` → ``{"models": [{"name", "model", "modified_at", "size", "digest", "details"}]}``.
- ``POST /api/chat`` with ``stream: false`` → ``{"model", "created_at", "message": {"role":
  "assistant", "content"}, "done": true, "done_reason": "stop", "total_duration", "load_duration",
  "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"}``; unknown model →
  404 ``{"error": "model 'x' not found"}``.

``reply(messages) -> str`` makes the answer. ``fail_with`` (an HTTP status) or ``delay`` (seconds)
imitate broken servers. Every request is recorded (``requests``: ``(method, path, body)``) so
tests can count model calls and check what was sent.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _default_reply(messages: list[dict]) -> str:
    return "Instruction: \"Write an email to Sam confirming Thursday's site visit and asking about parking.\""


class FakeChatServer:
    def __init__(self, *, models: tuple[str, ...] = ("fake-model",), reply: Callable[[list[dict]], str] = _default_reply,
                 fail_with: int | None = None, delay: float = 0.0):
        self.models = list(models)
        self.reply = reply
        self.fail_with = fail_with
        self.delay = delay
        self.requests: list[tuple[str, str, dict | None]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def calls(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)

    def prompts(self) -> list[str]:
        """Every message content the server was sent, for privacy checks."""
        return [m.get("content", "") for _, _, b in self.requests if b for m in b.get("messages", [])]

    def __enter__(self) -> FakeChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # ------------------------------------------------------------------------------------------ handler
    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet; never log prompt text
                pass

            def _send(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self, body):
                with server._lock:
                    server.requests.append((self.command, self.path, body))

            def _gate(self) -> bool:
                if server.delay:
                    time.sleep(server.delay)
                if server.fail_with:
                    self._send(server.fail_with, {"error": {"message": "injected failure", "type": "server_error"}})
                    return False
                return True

            def do_GET(self):
                self._record(None)
                if not self._gate():
                    return
                now = int(time.time())
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": now, "owned_by": "fake"} for m in server.models]})
                elif self.path == "/api/tags":
                    self._send(200, {"models": [
                        {"name": m, "model": m, "modified_at": datetime.now(timezone.utc).isoformat(), "size": 1,
                         "digest": "0" * 64, "details": {"format": "gguf", "family": "llama"}} for m in server.models]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(n) or b"{}")
                except ValueError:
                    self._record(None)
                    self._send(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
                    return
                self._record(body)
                if not self._gate():
                    return
                messages = body.get("messages")
                if not isinstance(messages, list) or not messages:
                    self._send(400, {"error": {"message": "messages is required", "type": "invalid_request_error"}})
                    return
                model = body.get("model")
                if self.path == "/v1/chat/completions":
                    if model not in server.models:
                        self._send(404, {"error": {"message": f"The model `{model}` does not exist",
                                                   "type": "invalid_request_error", "code": "model_not_found"}})
                        return
                    content = server.reply(messages)
                    pt = sum(len(str(m.get("content", "")).split()) for m in messages)
                    ct = len(content.split())
                    self._send(200, {
                        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                     "logprobs": None, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
                    })
                elif self.path == "/api/chat":
                    if model not in server.models:
                        self._send(404, {"error": f"model '{model}' not found"})
                        return
                    if body.get("stream", True) is not False:
                        self._send(400, {"error": "this fake only answers stream: false"})
                        return
                    content = server.reply(messages)
                    self._send(200, {
                        "model": model,
                        "created_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                        "message": {"role": "assistant", "content": content},
                        "done": True,
                        "done_reason": "stop",
                        "total_duration": 1_000_000,
                        "load_duration": 1000,
                        "prompt_eval_count": 10,
                        "prompt_eval_duration": 1000,
                        "eval_count": len(content.split()),
                        "eval_duration": 1000,
                    })
                else:
                    self._send(404, {"error": "not found"})

        return Handler
