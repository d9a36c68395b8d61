"""A test server for the parts of Ollama's REST API that ``mailvoice deploy`` uses.

No Ollama binary can be installed here, and Ollama ≥ 0.30 serves every GGUF model through a
llama.cpp ``llama-server`` subprocess (adapters via ``--lora``). So does this server: each model
runs in a real ``llama-server`` started on first use, and prompts are rendered from the model's
TEMPLATE with Ollama's rules (``fakes.gotemplate``: ``collate``, the SYSTEM message,
a generate prompt as the user message). Contract (ollama docs/api.md, docs/openapi.yaml):

- ``GET /api/version`` → ``{"version": …}``.
- ``HEAD /api/blobs/sha256:<hex>`` → 200 / 404; ``POST`` stores the body, 201 Created, 400
  ``{"error": …}`` when the body's sha256 is not the digest or the digest is malformed.
- ``POST /api/create`` ``{model, from?, files?, adapters?, template?, system?, parameters?,
  quantize?, stream?}`` → NDJSON ``{"status": …}`` lines ending ``{"status":"success"}``;
  failures found while creating are an ``{"error": …}`` line (HTTP 200, as Ollama streams them);
  a malformed request is HTTP 400 ``{"error": …}``. Blobs must exist and be GGUF; ``adapters``
  must be a GGUF LoRA (``general.type=adapter``) whose architecture matches the base.
  ``refuse_adapters=True`` imitates servers reported to refuse new adapter models.
- ``GET /api/tags``, ``POST /api/show``, ``DELETE /api/delete`` (404 ``{"error"}`` if absent).
- ``POST /api/generate`` / ``POST /api/chat`` (``stream`` default true → NDJSON; final object
  has ``done: true``, ``done_reason`` ``stop`` or ``length``, counts and durations in ns);
  unknown model → 404 ``{"error": "model 'x' not found"}``. ``format`` ("json" or a JSON schema,
  docs/api.md "Structured outputs") constrains the answer as Ollama does: through llama.cpp's
  JSON-schema grammar (``json_schema`` of llama-server's ``/completion``).
- Without a ``llama-server`` binary, ``scripted(model, prompt, format) -> text`` answers instead
  (a stand-in model for machines without the llama.cpp tools; everything else is the same).

Only digests and counts are logged, never prompt text.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from fakes.gotemplate import chat_messages, generate_messages, render  # noqa: E402
from mailvoice.deploy.llama_server import LlamaServer  # noqa: E402

_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
_OPTION_MAP = {"num_predict": "n_predict", "temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
               "repeat_penalty": "repeat_penalty", "seed": "seed", "min_p": "min_p"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _norm(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def _gguf_meta(path: Path) -> dict:
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    out = {}
    for key in ("general.architecture", "general.type", "adapter.type", "general.file_type"):
        f = r.fields.get(key)
        if f is None:
            continue
        v = f.parts[f.data[0]]
        out[key] = bytes(v).decode() if v.dtype.kind == "u" and v.dtype.itemsize == 1 else int(v[0])
    return out


class FakeOllama:
    def __init__(self, root: Path, llama_server: Path | None, *, version: str = "0.30.0",
                 refuse_adapters: bool = False, threads: int = 2, scripted=None):
        self.scripted = scripted
        self.root = Path(root)
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        self.llama_server = llama_server
        self.version = version
        self.refuse_adapters = refuse_adapters
        self.threads = threads
        self.models: dict[str, dict] = {}
        self.runners: dict[tuple, LlamaServer] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path): what the client called
        self.lock = threading.RLock()
        self.httpd: ThreadingHTTPServer | None = None

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> str:
        fake = self

        class Handler(_Handler):
            server_state = fake

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        for r in self.runners.values():
            r.stop()
        self.runners.clear()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # ----------------------------------------------------------------------------- storage
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / ("sha256-" + _DIGEST.match(digest).group(1))

    def add_model(self, name: str, gguf: Path, **fields) -> None:
        """Register a base model directly (what `ollama pull <tag>` would have done)."""
        digest = "sha256:" + hashlib.sha256(Path(gguf).read_bytes()).hexdigest()
        shutil.copy(gguf, self.blob_path(digest))
        self.models[_norm(name)] = self._model_record(name, digest, None, **fields)

    def add_scripted_model(self, name: str, *, template="{{ .Prompt }}", system="", parameters=None) -> None:
        """Register a model answered by ``scripted`` (no GGUF): for machines without llama.cpp."""
        self.models[_norm(name)] = {
            "name": _norm(name), "model_digest": None, "adapter_digest": None, "template": template,
            "system": system, "parameters": dict(parameters or {}), "parent": "", "family": "scripted",
            "file_type": None, "size": 0, "modified_at": _now(),
            "digest": hashlib.sha256(f"scripted:{name}".encode()).hexdigest()}

    def _model_record(self, name, model_digest, adapter_digest, *, template="{{ .Prompt }}", system="",
                      parameters=None, parent=""):
        meta = _gguf_meta(self.blob_path(model_digest))
        size = self.blob_path(model_digest).stat().st_size + (self.blob_path(adapter_digest).stat().st_size if adapter_digest else 0)
        return {
            "name": _norm(name), "model_digest": model_digest, "adapter_digest": adapter_digest,
            "template": template, "system": system, "parameters": dict(parameters or {}), "parent": parent,
            "family": meta.get("general.architecture", ""), "file_type": meta.get("general.file_type"),
            "size": size, "modified_at": _now(),
            "digest": hashlib.sha256(f"{model_digest}{adapter_digest}{template}{system}{parameters}".encode()).hexdigest(),
        }

    # ----------------------------------------------------------------------------- inference
    def runner(self, m: dict) -> LlamaServer:
        key = (m["model_digest"], m["adapter_digest"])
        with self.lock:
            srv = self.runners.get(key)
            if srv is None:
                if self.llama_server is None:
                    raise RuntimeError("this test server has no llama-server binary")
                loras = [self.blob_path(m["adapter_digest"])] if m["adapter_digest"] else []
                srv = LlamaServer(self.llama_server, self.blob_path(m["model_digest"]), loras=loras,
                                  ctx=int(m["parameters"].get("num_ctx", 2048)), threads=self.threads).start()
                self.runners[key] = srv
            return srv

    def run(self, m: dict, prompt: str, options: dict, fmt=None) -> dict:
        if self.llama_server is None and self.scripted is not None:
            text = self.scripted(m["name"], prompt, fmt)
            return {"text": text, "done_reason": "stop", "prompt_eval_count": len(prompt.split()),
                    "eval_count": len(text.split()), "duration": 1}
        params = {**m["parameters"], **(options or {})}
        body = {v: params[k] for k, v in _OPTION_MAP.items() if k in params}
        if isinstance(fmt, dict):
            body["json_schema"] = fmt
        elif fmt == "json":
            body["json_schema"] = {"type": "object"}
        stop = params.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        srv = self.runner(m)
        lora = [{"id": 0, "scale": 1.0}] if m["adapter_digest"] else None
        t = time.monotonic_ns()
        n_predict = body.pop("n_predict", -1)
        temperature = body.pop("temperature", 0.8)
        r = srv.complete(prompt, n_predict=n_predict, lora=lora, stop=stop, temperature=temperature, options=body)
        dur = time.monotonic_ns() - t
        reason = {"eos": "stop", "word": "stop", "limit": "length"}.get(r.get("stop_type"), "stop")
        return {"text": r.get("content", ""), "done_reason": reason, "prompt_eval_count": r.get("tokens_evaluated", 0),
                "eval_count": r.get("tokens_predicted", 0), "duration": dur}


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeOllama
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet; never log bodies
        pass

    # ----------------------------------------------------------------------------- helpers
    def _send(self, status: int, obj=None, *, head_only=False):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head_only:
            self.wfile.write(data)

    def _error(self, status: int, msg: str):
        self._send(status, {"error": msg})

    def _stream_start(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream_end(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._error(400, "invalid character in request body")  # Go's json error, roughly
            return None
        if not isinstance(body, dict):
            self._error(400, "request body must be a JSON object")
            return None
        return body

    def _model(self, name):
        return self.server_state.models.get(_norm(name or ""))

    # ----------------------------------------------------------------------------- routes
    def do_HEAD(self):
        s = self.server_state
        s.requests.append(("HEAD", self.path))
        if self.path.startswith("/api/blobs/"):
            digest = self.path.rsplit("/", 1)[-1]
            if not _DIGEST.match(digest):
                return self._send(400, None, head_only=True)
            return self._send(200 if s.blob_path(digest).is_file() else 404, None, head_only=True)
        self._send(404, None, head_only=True)

    def do_GET(self):
        s = self.server_state
        s.requests.append(("GET", self.path))
        if self.path == "/api/version":
            return self._send(200, {"version": s.version})
        if self.path == "/api/tags":
            return self._send(200, {"models": [self._tag(m) for m in s.models.values()]})
        if self.path in ("/", "/api"):
            self.send_response(200)
            self.send_header("Content-Length", "17")
            self.end_headers()
            return self.wfile.write(b"Ollama is running")
        self._error(404, "404 page not found")

    def do_DELETE(self):
        s = self.server_state
        s.requests.append(("DELETE", self.path))
        if self.path != "/api/delete":
            return self._error(404, "404 page not found")
        body = self._body_json()
        if body is None:
            return
        name = _norm(body.get("model") or body.get("name") or "")
        with s.lock:
            if name not in s.models:
                return self._error(404, f"model '{body.get('model')}' not found")
            del s.models[name]
        self._send(200, None)

    def do_POST(self):
        s = self.server_state
        s.requests.append(("POST", self.path))
        if self.path.startswith("/api/blobs/"):
            return self._push_blob(self.path.rsplit("/", 1)[-1])
        route = {"/api/create": self._create, "/api/generate": self._generate, "/api/chat": self._chat,
                 "/api/show": self._show}.get(self.path)
        if route is None:
            return self._error(404, "404 page not found")
        body = self._body_json()
        if body is not None:
            route(body)

    def _tag(self, m):
        ft = m["file_type"]
        from gguf import LlamaFileType

        try:
            level = LlamaFileType(ft).name.removeprefix("MOSTLY_") if ft is not None else "unknown"
        except ValueError:
            level = str(ft)
        return {"name": m["name"], "model": m["name"], "modified_at": m["modified_at"], "size": m["size"],
                "digest": m["digest"], "details": {"parent_model": m["parent"], "format": "gguf", "family": m["family"],
                                                   "families": [m["family"]], "parameter_size": "", "quantization_level": level}}

    def _push_blob(self, digest):
        s = self.server_state
        m = _DIGEST.match(digest)
        if not m:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            return self._error(400, "invalid digest format")
        n = int(self.headers.get("Content-Length") or 0)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=s.root / "blobs", prefix=".upload-")
        with open(fd, "wb") as fh:
            left = n
            while left > 0:
                block = self.rfile.read(min(left, 1 << 20))
                if not block:
                    break
                h.update(block)
                fh.write(block)
                left -= len(block)
        if h.hexdigest() != m.group(1):
            Path(tmp).unlink()
            return self._error(400, f"digest mismatch, expected sha256:{m.group(1)}, got sha256:{h.hexdigest()}")
        Path(tmp).replace(s.blob_path(digest))
        self._send(201, None)

    def _create(self, body):
        s = self.server_state
        name = body.get("model") or body.get("name")
        if not name:
            return self._error(400, "model is required")
        if body.get("quantize"):
            return self._error(400, "quantization is not supported by this test server")
        files, adapters = body.get("files") or {}, body.get("adapters") or {}
        if not files and not body.get("from"):
            return self._error(400, "neither 'from' or 'files' was specified")
        stream = body.get("stream", True)
        lines = []

        def fail(msg):
            if stream:
                self._stream_start()
                for ln in lines:
                    self._chunk(ln)
                self._chunk({"error": msg})
                return self._stream_end()
            return self._error(400, msg)

        model_digest, parent = None, ""
        template, system, params = "{{ .Prompt }}", "", {}
        if body.get("from"):
            base = self._model(body["from"])
            if base is None:
                return fail(f"model '{body['from']}' not found")
            model_digest, parent = base["model_digest"], base["name"]
            template, system, params = base["template"], base["system"], dict(base["parameters"])
            lines.append({"status": "using existing layer " + model_digest})
        for fname, digest in files.items():
            if not _DIGEST.match(str(digest)) or not s.blob_path(digest).is_file():
                return fail(f"blob {digest} for {fname} not found: push it to /api/blobs first")
            if not fname.endswith(".gguf"):
                return fail("this test server only creates models from GGUF files")
            with open(s.blob_path(digest), "rb") as fh:
                if fh.read(4) != b"GGUF":
                    return fail(f"{fname} is not a GGUF file")
            lines.append({"status": "parsing GGUF"})
            lines.append({"status": "using existing layer " + digest})
            model_digest = digest
        adapter_digest = None
        if adapters:
            if s.refuse_adapters:
                return fail("adapters are not supported for new models on this server")
            if len(adapters) != 1:
                return fail("only one adapter is currently supported")
            (aname, adigest), = adapters.items()
            if not _DIGEST.match(str(adigest)) or not s.blob_path(adigest).is_file():
                return fail(f"blob {adigest} for {aname} not found: push it to /api/blobs first")
            meta = _gguf_meta(s.blob_path(adigest))
            if meta.get("general.type") != "adapter":
                return fail(f"{aname} is not a GGUF LoRA adapter")
            base_arch = _gguf_meta(s.blob_path(model_digest)).get("general.architecture")
            if meta.get("general.architecture") != base_arch:
                return fail(f"adapter architecture {meta.get('general.architecture')} does not match base {base_arch}")
            adapter_digest = adigest
            lines.append({"status": "using existing layer " + adigest})
        if "template" in body:
            template = body["template"]
            lines.append({"status": "using template from request"})
        if "system" in body:
            system = body["system"]
        params.update(body.get("parameters") or {})
        rec = s._model_record(name, model_digest, adapter_digest, template=template, system=system, parameters=params, parent=parent)
        with s.lock:
            s.models[_norm(name)] = rec
        lines += [{"status": "writing manifest"}, {"status": "success"}]
        if not stream:
            return self._send(200, {"status": "success"})
        self._stream_start()
        for ln in lines:
            self._chunk(ln)
        self._stream_end()

    def _show(self, body):
        m = self._model(body.get("model") or body.get("name"))
        if m is None:
            return self._error(404, f"model '{body.get('model')}' not found")
        params = "\n".join(f"{k} {json.dumps(v) if isinstance(v, str) else v}" for k, vs in m["parameters"].items()
                           for v in (vs if isinstance(vs, list) else [vs]))
        self._send(200, {"modelfile": f"FROM {m['model_digest']}\n", "parameters": params, "template": m["template"],
                         "system": m["system"], "details": self._tag(m)["details"],
                         "model_info": {"general.architecture": m["family"]}, "capabilities": ["completion"]})

    def _answer(self, body, msgs_or_prompt, *, chat: bool):
        s = self.server_state
        m = self._model(body.get("model"))
        if m is None:
            return self._error(404, f"model '{body.get('model')}' not found")
        try:
            out = s.run(m, msgs_or_prompt(m), body.get("options") or {}, body.get("format"))
        except Exception as e:  # the runner failed: Ollama answers 500 {"error"}
            return self._error(500, f"llama runner process has terminated: {str(e)[:200]}")
        final = {"model": body["model"], "created_at": _now(), "done": True, "done_reason": out["done_reason"],
                 "total_duration": out["duration"], "load_duration": 0, "prompt_eval_count": out["prompt_eval_count"],
                 "prompt_eval_duration": 0, "eval_count": out["eval_count"], "eval_duration": out["duration"]}
        piece = {"message": {"role": "assistant", "content": out["text"]}} if chat else {"response": out["text"]}
        empty = {"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}
        if body.get("stream", True) is False:
            return self._send(200, {**final, **piece})
        self._stream_start()
        self._chunk({"model": body["model"], "created_at": _now(), "done": False, **piece})
        self._chunk({**final, **empty})
        self._stream_end()

    def _generate(self, body):
        if not body.get("model"):
            return self._error(400, "model is required")

        def prompt(m):
            if body.get("raw"):
                return body.get("prompt", "")
            tmpl = body.get("template") or m["template"]
            return render(tmpl, generate_messages(body.get("prompt", ""), system=body.get("system"), model_system=m["system"]))

        self._answer(body, prompt, chat=False)

    def _chat(self, body):
        if not body.get("model"):
            return self._error(400, "model is required")
        self._answer(body, lambda m: render(m["template"], chat_messages(body.get("messages") or [], model_system=m["system"])), chat=True)
