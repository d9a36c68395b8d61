"""The gateway: Ollama's API (and the OpenAI-compatible ``/v1`` routes) in front of an upstream.

Every request is forwarded unchanged — method, path, query, body bytes, response bytes and
status — to the upstream (Ollama, ``llama-server``, vLLM or ``mailvoice serve``), except
EmailAI's drafting call (``POST /api/chat``, ``/api/generate`` or ``/v1/chat/completions``
recognised by ``dataset.emailai_format.parse_emailai_request``, through ``gateway.emailai_calls``). For
that one the account email picks the user's voice model (``gateway.users``); the thread becomes
our training prompt (``chat.instruction_for``), PII-scrubbed like the training data; the
voice model's email comes back in exactly the shape EmailAI asked for (``gateway.shape``),
streamed when asked. Users without a voice model, or whose last evaluation failed the gate,
get the base model: their request passes through untouched.

Nothing from a prompt or an email is logged: one line per request with the route, status,
byte counts and milliseconds. Each drafting request is answered from its own upstream call
with its own user's model name; nothing is shared between requests but the connection pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import aiohttp
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route as StarletteRoute

from ..chat import SYSTEM_PROMPT
from .emailai_calls import draft_request, to_emailai_messages, to_instruction, warm_scrubber
from .shape import JsonTemplate, requested_schema
from .users import Route, UserDirectory

log = logging.getLogger("mailvoice.gateway")

PATH_TOKEN_PREFIX = "/t/"  # OLLAMA_BASE_URL=http://gateway/t/<token>/api: the token without a header
DRAFT_PATHS = {"/api/chat": "ollama-chat", "/api/generate": "ollama-generate",
               "/v1/chat/completions": "openai-chat", "/chat/completions": "openai-chat"}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}


@dataclass
class GatewayConfig:
    upstream: str = "http://127.0.0.1:11434"
    upstream_api: str = "ollama"  # how the gateway calls voice models: "ollama" (/api/chat) or "openai" (/v1)
    token: str | None = None  # bearer token clients must send
    upstream_token: str | None = None  # sent to the upstream instead of the client's Authorization
    directory: UserDirectory = field(default_factory=UserDirectory)
    draft_options: dict = field(default_factory=dict)  # Ollama options for voice-model calls (num_predict…)
    candidates: int = 1  # best-of-N (opt-in): N > 1 samples N drafts, returns the best-scored
    candidate_temperature: float = 0.7
    scorer: Callable[..., list[float]] | None = None  # (user_id, texts, stopped=[…]) → rerank scores (compose.StyleScorer)
    timeout_s: float = 300.0
    fallback_on_missing_model: bool = True  # voice model absent upstream (404) → pass through

    def __post_init__(self):
        u = self.upstream.rstrip("/")
        for suffix in ("/api", "/v1"):
            if u.endswith(suffix):
                u = u[: -len(suffix)]
        self.upstream = u
        if self.upstream_api not in ("ollama", "openai"):
            raise ValueError("upstream_api must be 'ollama' or 'openai'")


class UpstreamError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _error(kind: str, status: int, message: str) -> JSONResponse:
    if kind.startswith("openai"):
        return JSONResponse({"error": {"message": message, "type": "api_error", "code": status}}, status_code=status)
    return JSONResponse({"error": message}, status_code=status)  # Ollama's error shape


def _api_kind(path: str) -> str:
    return "openai" if path.startswith("/v1") or path.startswith("/chat/") else "ollama"


class Gateway:
    def __init__(self, config: GatewayConfig):
        self.cfg = config
        self.client: aiohttp.ClientSession | None = None
        self.stats = {"requests": 0, "drafts": 0, "passthrough": 0, "errors": 0}

    # ----------------------------------------------------------------------------- lifecycle
    async def startup(self):
        # the PII scrubber's engines take a second or more to build: now, not on the first draft
        await asyncio.to_thread(warm_scrubber)
        await asyncio.to_thread(self._warm_retrieval)
        # aiohttp, not httpx, to the upstream: httpx's pool bookkeeping cost ~1 ms CPU per request
        # here (bench/gateway_overhead.py). Bytes pass untouched (no decompression, no added
        # headers) and no cookie jar, so nothing one user's call sets reaches another's.
        self.client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.cfg.timeout_s, sock_connect=5.0),
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30),
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"))

    async def shutdown(self):
        if self.client:
            await self.client.close()

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]
        @contextlib.asynccontextmanager
        async def lifespan(app):
            await self.startup()
            try:
                yield
            finally:
                await self.shutdown()

        return Starlette(routes=[StarletteRoute("/{path:path}", self.handle, methods=methods)], lifespan=lifespan)

    # ----------------------------------------------------------------------------- entry
    def _authorised(self, request: Request) -> tuple[bool, str]:
        """(allowed?, the path to serve). The token comes as ``Authorization: Bearer <token>`` or,
        for clients that cannot add a header (EmailAI's Ollama provider sends none), as the first
        path segments ``/t/<token>/…`` of its base URL (``OLLAMA_BASE_URL=http://gw/t/<token>/api``),
        stripped before anything is routed or forwarded."""
        path = request.url.path
        if not self.cfg.token:
            return True, path
        if path.startswith(PATH_TOKEN_PREFIX):
            got, _, rest = path[len(PATH_TOKEN_PREFIX):].partition("/")
            return hmac.compare_digest(got.encode(), self.cfg.token.encode()), "/" + rest
        got = request.headers.get("authorization", "")
        return hmac.compare_digest(got.encode(), f"Bearer {self.cfg.token}".encode()), path

    async def handle(self, request: Request) -> Response:
        t0 = time.perf_counter()
        self.stats["requests"] += 1
        allowed, path = self._authorised(request)
        kind = DRAFT_PATHS.get(path, _api_kind(path))
        if not allowed:
            self.stats["errors"] += 1
            log.info("route=denied status=401 ms=%.1f", (time.perf_counter() - t0) * 1e3)
            return _error(kind, 401, "unauthorized: this gateway needs 'Authorization: Bearer <token>' "
                                     "or the token in the URL path (/t/<token>/api)")
        body = None
        if request.method == "POST" and path in DRAFT_PATHS:
            body = await request.body()
            parsed = None
            try:
                payload = json.loads(body) if body else None
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                messages = _messages_of(kind, payload)
                parsed = draft_request(messages) if messages else None
            if parsed is not None:
                route = self.cfg.directory.route_for_email(parsed.account_email)
                if route.model:
                    try:
                        resp = await self.draft(kind, payload, parsed, route, t0)
                    except UpstreamError as e:
                        if e.status == 404 and self.cfg.fallback_on_missing_model:
                            log.info("route=draft user=%s fallback=model-missing-upstream", route.user_id)
                            return await self.forward(request, body, t0, route_name="base:model-missing", path=path)
                        self.stats["errors"] += 1
                        log.info("route=draft user=%s status=%d ms=%.1f", route.user_id, e.status,
                                 (time.perf_counter() - t0) * 1e3)
                        return _error(kind, e.status, e.message)
                    return resp
                return await self.forward(request, body, t0, route_name=f"base:{route.reason}", path=path)
        return await self.forward(request, body, t0, path=path)

    # ----------------------------------------------------------------------------- pass-through
    def _fwd_headers(self, request: Request) -> dict:
        h = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        if self.cfg.token:
            h.pop("authorization", None)
        if self.cfg.upstream_token:
            h["authorization"] = f"Bearer {self.cfg.upstream_token}"
        return h

    async def forward(self, request: Request, body: bytes | None, t0: float, route_name: str = "pass",
                      path: str | None = None) -> Response:
        self.stats["passthrough"] += 1
        path = path or request.url.path
        url = self.cfg.upstream + path + (f"?{request.url.query}" if request.url.query else "")
        has_body = body is not None or "content-length" in request.headers or "transfer-encoding" in request.headers
        content = body if body is not None else (request.stream() if has_body else None)
        try:
            resp = await self.client.request(request.method, url, headers=self._fwd_headers(request), data=content,
                                             allow_redirects=False)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            self.stats["errors"] += 1
            log.info("route=%s status=502 error=%s ms=%.1f", route_name, type(e).__name__, (time.perf_counter() - t0) * 1e3)
            return _error(_api_kind(path), 502,
                          f"mailvoice gateway: the upstream at {self.cfg.upstream} is unreachable ({type(e).__name__})")
        route = route_name.split(":")[0]
        length = resp.content_length
        if length is not None and length <= SMALL_BODY and not resp.headers.get("transfer-encoding"):
            # a small, complete answer (rule matching, tags…): one read, one send
            try:
                data = await resp.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                resp.release()
                return _error(_api_kind(path), 502, f"mailvoice gateway: the upstream broke off ({type(e).__name__})")
            headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["x-mailvoice-route"] = route
            log.info("route=%s status=%d in=%d ms=%.1f", route_name, resp.status, len(body or b""), (time.perf_counter() - t0) * 1e3)
            return Response(data, status_code=resp.status, headers=headers)
        headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP - {"content-length"}}
        headers["x-mailvoice-route"] = route

        async def done():
            resp.release()
            log.info("route=%s status=%d in=%d ms=%.1f", route_name, resp.status, len(body or b""),
                     (time.perf_counter() - t0) * 1e3)

        return StreamingResponse(resp.content.iter_any(), status_code=resp.status, headers=headers,
                                 background=BackgroundTask(done))

    # ----------------------------------------------------------------------------- drafting
    def _warm_retrieval(self) -> None:
        """Load every voice model's retrieval index (and MiniLM, if one uses it) before serving."""
        from ..rag.index import load_cached

        for folder in {r.retrieval for r in self.cfg.directory.routes() if r.model and r.retrieval}:
            try:
                load_cached(folder).examples_for("warm up")
            except Exception as e:  # noqa: BLE001 - that user is served without retrieval, and told
                log.warning("retrieval index unusable (%s): drafting without it", type(e).__name__)

    def _voice_messages(self, parsed, route: Route) -> list[dict]:
        """The prompt the user's adapter was trained on: ours (with retrieval if it learned with it),
        or EmailAI's own for an adapter trained on train_emailai.jsonl."""
        if route.prompt == "emailai":
            return to_emailai_messages(parsed, route.emailai_variant)
        retrieve = None
        if route.retrieval:
            from ..rag.index import load_cached

            def retrieve(query: str) -> list[str]:
                try:
                    return load_cached(route.retrieval).examples_for(query)
                except Exception as e:  # noqa: BLE001 - a broken index costs the examples, not the draft
                    log.info("route=draft user=%s retrieval=failed error=%s", route.user_id, type(e).__name__)
                    return []
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": to_instruction(parsed, retrieve)}]

    async def _upstream_text(self, model: str, messages: list[dict], options: dict) -> dict:
        """One non-streamed completion from the voice model: {text, prompt_tokens, tokens}."""
        if self.cfg.upstream_api == "ollama":
            payload = {"model": model, "messages": messages, "stream": False}
            if options:
                payload["options"] = options
            r = await self._post("/api/chat", payload)
            return {"text": (r.get("message") or {}).get("content", ""), "prompt_tokens": r.get("prompt_eval_count", 0),
                    "tokens": r.get("eval_count", 0), "done_reason": r.get("done_reason", "stop")}
        payload = {"model": model, "messages": messages, "stream": False}
        for src, dst in (("num_predict", "max_tokens"), ("temperature", "temperature"), ("top_p", "top_p"), ("seed", "seed")):
            if src in options:
                payload[dst] = options[src]
        r = await self._post("/v1/chat/completions", payload)
        ch = (r.get("choices") or [{}])[0]
        usage = r.get("usage") or {}
        return {"text": (ch.get("message") or {}).get("content", ""), "prompt_tokens": usage.get("prompt_tokens", 0),
                "tokens": usage.get("completion_tokens", 0),
                "done_reason": "length" if ch.get("finish_reason") == "length" else "stop"}

    def _upstream_headers(self) -> dict:
        return {"authorization": f"Bearer {self.cfg.upstream_token}"} if self.cfg.upstream_token else {}

    async def _post(self, path: str, payload: dict) -> dict:
        try:
            async with self.client.post(self.cfg.upstream + path, json=payload, headers=self._upstream_headers()) as r:
                raw, status, reason = await r.read(), r.status, r.reason
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise UpstreamError(502, f"mailvoice gateway: the upstream at {self.cfg.upstream} is unreachable ({type(e).__name__})") from None
        if status >= 400:
            raise UpstreamError(status, f"upstream: {_error_text(raw, reason)}")
        try:
            return json.loads(raw)
        except ValueError:
            raise UpstreamError(502, "upstream answered with something that is not JSON") from None

    async def _stream_ollama(self, model: str, messages: list[dict], options: dict):
        """Text pieces from the voice model as Ollama streams them; the last item is the stats dict."""
        payload = {"model": model, "messages": messages, "stream": True}
        if options:
            payload["options"] = options
        try:
            async with self.client.post(self.cfg.upstream + "/api/chat", json=payload,
                                        headers=self._upstream_headers()) as r:
                if r.status >= 400:
                    raise UpstreamError(r.status, f"upstream: {_error_text(await r.read(), r.reason)}")
                async for line in r.content:  # NDJSON: one object per line
                    if not line.strip():
                        continue
                    obj = json.loads(line)
                    if obj.get("error"):
                        raise UpstreamError(500, f"upstream: {str(obj['error'])[:300]}")
                    piece = (obj.get("message") or {}).get("content", "")
                    if piece:
                        yield piece
                    if obj.get("done"):
                        yield {"prompt_tokens": obj.get("prompt_eval_count", 0), "tokens": obj.get("eval_count", 0),
                               "done_reason": obj.get("done_reason", "stop")}
                        return
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise UpstreamError(502, f"mailvoice gateway: the upstream at {self.cfg.upstream} is unreachable ({type(e).__name__})") from None

    async def best_of(self, route: Route, messages: list[dict], n: int) -> dict:
        base = dict(self.cfg.draft_options)
        opts = [{**base, "temperature": base.get("temperature", self.cfg.candidate_temperature), "seed": base.get("seed", 0) + i}
                for i in range(n)]
        t = time.perf_counter()
        outs = await asyncio.gather(*(self._upstream_text(route.model, messages, o) for o in opts))
        gen_ms = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        texts = [answer_text(route, o["text"]) for o in outs]
        stopped = [o.get("done_reason") != "length" for o in outs]  # a cut-off draft loses (evaluate.rerank)
        scores = (await asyncio.to_thread(self.cfg.scorer, route.user_id, texts, stopped=stopped) if self.cfg.scorer
                  else [0.0] * n)
        best = max(range(n), key=lambda i: scores[i])
        score_ms = (time.perf_counter() - t) * 1e3
        log.info("route=draft best_of=%d gen_ms=%.1f score_ms=%.1f", n, gen_ms, score_ms)
        return {**outs[best], "text": texts[best], "candidates": n, "score": scores[best]}

    async def draft(self, kind: str, body: dict, parsed, route: Route, t0: float) -> Response:
        self.stats["drafts"] += 1
        messages = (await asyncio.to_thread(self._voice_messages, parsed, route) if route.retrieval
                    else self._voice_messages(parsed, route))
        wants_json, schema = requested_schema(body, openai=kind.startswith("openai"), prompt_schema=parsed.schema)
        tmpl = JsonTemplate(schema) if wants_json else None
        stream = bool(body.get("stream", kind.startswith("ollama"))) if kind != "openai-chat" else bool(body.get("stream"))
        n = int(self.cfg.candidates or 1)
        requested_model = body.get("model", "")
        headers = {"x-mailvoice-route": "voice"}

        def finish(stats: dict):
            log.info("route=draft call=%s user=%s kind=%s stream=%s tokens=%s ms=%.1f", parsed.kind, route.user_id, kind,
                     stream, stats.get("tokens"), (time.perf_counter() - t0) * 1e3)

        if stream and n == 1 and self.cfg.upstream_api == "ollama" and route.prompt != "emailai":
            agen = self._stream_ollama(route.model, messages, self.cfg.draft_options)
            # fetch the first item before answering, so an upstream failure is still an HTTP error
            try:
                first = await agen.__anext__()
            except StopAsyncIteration:
                first = {}
            pieces = _pieces(first, agen)
        else:
            out = (await self.best_of(route, messages, n) if n > 1
                   else await self._upstream_text(route.model, messages, self.cfg.draft_options))
            text = answer_text(route, out["text"])
            if not stream:
                finish(out)
                content = tmpl.render(text) if tmpl else text
                return JSONResponse(_final(kind, requested_model, content, out), headers=headers)
            pieces = _single(text, out)
        return StreamingResponse(_stream_body(kind, requested_model, pieces, tmpl, finish),
                                 media_type="text/event-stream" if kind == "openai-chat" else "application/x-ndjson",
                                 headers=headers)


# --------------------------------------------------------------------------------- helpers
SMALL_BODY = 1 << 20  # complete upstream answers up to this size are read whole, not streamed


def _error_text(raw: bytes, reason: str | None) -> str:
    """The upstream's own error message (Ollama ``{"error": …}``, OpenAI ``{"error": {"message"}}``)."""
    try:
        err = json.loads(raw).get("error")
        err = err.get("message") if isinstance(err, dict) else err
    except (ValueError, AttributeError):
        err = None
    return str(err or reason or "error")[:300]


def answer_text(route: Route, text: str) -> str:
    """The email in the voice model's answer: an EmailAI-trained adapter answers ``{"reply": …}``."""
    if route.prompt == "emailai":
        from ..dataset.emailai_format import parse_reply

        return (parse_reply(text) or text).strip()
    return text.strip()


def _messages_of(kind: str, payload: dict):
    if kind == "ollama-generate":
        prompt = payload.get("prompt")
        if not isinstance(prompt, str):
            return None
        return [{"role": "system", "content": payload.get("system") or ""}, {"role": "user", "content": prompt}]
    return payload.get("messages")


async def _pieces(first, agen):
    yield first
    async for x in agen:
        yield x


async def _single(text: str, stats: dict):
    yield text
    yield stats


class _Trim:
    """Strip leading whitespace from the stream's start and hold trailing whitespace back."""

    def __init__(self):
        self.started, self.held = False, ""

    def feed(self, piece: str) -> str:
        if not self.started:
            piece = piece.lstrip()
            if not piece:
                return ""
            self.started = True
        piece = self.held + piece
        stripped = piece.rstrip()
        self.held = piece[len(stripped):]
        return stripped


async def _stream_body(kind: str, model: str, pieces, tmpl: JsonTemplate | None, finish):
    trim = _Trim()
    stats: dict = {}
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())

    def chunk(text: str) -> bytes:
        if kind == "openai-chat":
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]}
            return b"data: " + json.dumps(obj).encode() + b"\n\n"
        piece = {"message": {"role": "assistant", "content": text}} if kind == "ollama-chat" else {"response": text}
        return (json.dumps({"model": model, "created_at": _now(), **piece, "done": False}) + "\n").encode()

    if tmpl:
        yield chunk(tmpl.prefix)
    try:
        async for p in pieces:
            if isinstance(p, dict):
                stats = p
                continue
            t = trim.feed(p)
            if t:
                yield chunk(tmpl.escape(t) if tmpl else t)
    except UpstreamError as e:  # mid-stream: Ollama streams errors as an {"error"} line
        log.info("route=draft status=%d mid-stream", e.status)
        yield (json.dumps({"error": e.message}) + "\n").encode() if kind != "openai-chat" else \
            b"data: " + json.dumps({"error": {"message": e.message}}).encode() + b"\n\n"
        return
    if tmpl:
        yield chunk(tmpl.suffix)
    finish(stats)
    if kind == "openai-chat":
        end = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": {}, "finish_reason": stats.get("done_reason", "stop")}]}
        yield b"data: " + json.dumps(end).encode() + b"\n\ndata: [DONE]\n\n"
        return
    empty = {"message": {"role": "assistant", "content": ""}} if kind == "ollama-chat" else {"response": ""}
    yield (json.dumps({"model": model, "created_at": _now(), **empty, **_ollama_done(stats)}) + "\n").encode()


def _ollama_done(stats: dict) -> dict[str, Any]:
    return {"done": True, "done_reason": stats.get("done_reason", "stop"), "total_duration": 0, "load_duration": 0,
            "prompt_eval_count": stats.get("prompt_tokens", 0), "prompt_eval_duration": 0,
            "eval_count": stats.get("tokens", 0), "eval_duration": 0}


def _final(kind: str, model: str, content: str, stats: dict) -> dict:
    if kind == "openai-chat":
        p, c = stats.get("prompt_tokens", 0), stats.get("tokens", 0)
        return {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                             "finish_reason": stats.get("done_reason", "stop")}],
                "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}}
    piece = {"message": {"role": "assistant", "content": content}} if kind == "ollama-chat" else {"response": content}
    return {"model": model, "created_at": _now(), **piece, **_ollama_done(stats)}


def create_app(config: GatewayConfig) -> Starlette:
    gw = Gateway(config)
    app = gw.app()
    app.state.gateway = gw
    return app


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def serve(config: GatewayConfig, host: str = "127.0.0.1", port: int = 11435) -> None:
    import uvicorn

    if not is_loopback(host) and not config.token:
        log.warning("the gateway listens on %s without a bearer token: anyone who can reach it can use every voice model", host)
    # log_config=None: uvicorn's dictConfig would close every logging handler already set up
    # (absl's, pulled in by rouge-score, closes the stream it holds: stderr).
    uvicorn.run(create_app(config), host=host, port=port, access_log=False, log_level="warning", log_config=None)
