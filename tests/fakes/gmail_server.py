"""A local fake of the Gmail REST API and Google's OAuth token endpoint, for tests.

Follows the documented contract closely enough for mailvoice's client:

- ``GET /gmail/v1/users/me/messages?q=&maxResults=&pageToken=`` → newest first,
  ``{messages:[{id,threadId}], nextPageToken, resultSizeEstimate}``; ``messages`` and
  ``nextPageToken`` are omitted when empty/last, as Gmail does. ``q`` supports ``in:sent``
  (and ``in:<label>``) only; ``maxResults`` defaults to 100, capped at 500.
- ``GET /gmail/v1/users/me/messages/{id}?format=raw`` → ``{id, threadId, labelIds, raw, …}``
  with ``raw`` as unpadded base64url; 404 ``NOT_FOUND`` for unknown ids.
- Bearer auth: unknown or expired access tokens get 401 ``UNAUTHENTICATED`` with a
  ``WWW-Authenticate`` header.
- ``POST /token`` (form): ``grant_type=refresh_token`` → ``{access_token, expires_in: 3599,
  scope, token_type}``; revoked/unknown refresh token → 400 ``invalid_grant``; wrong client →
  401 ``invalid_client``.
- ``inject(kind, [429, 503, …])`` makes the next requests of that kind ("list", "get",
  "token" or "any") answer those statuses first.
- ``max_concurrent``: Gmail limits concurrent requests per user and answers the excess
  ``429`` ``rateLimitExceeded`` "Too many concurrent requests for user" ("Handle errors",
  https://developers.google.com/workspace/gmail/api/guides/handle-errors#resolve_a_429_error_too_many_requests;
  the error body is Google's JSON error shape, ``{error: {code, message, errors: [{domain,
  reason, message}], status: "RESOURCE_EXHAUSTED"}}``). ``get_delay`` keeps each message fetch
  busy that long, so concurrency is observable (``peak_in_flight``).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit, unquote


@dataclass
class FakeMessage:
    id: str
    thread_id: str
    raw: bytes
    labels: tuple[str, ...]
    internal_date: int


@dataclass
class Mailbox:
    email: str
    refresh_token: str
    messages: list[FakeMessage] = field(default_factory=list)  # insertion = chronological
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add_message(self, raw: bytes, *, labels=("SENT",), thread_id: str | None = None,
                    msg_id: str | None = None) -> FakeMessage:
        n = next(self._ids)
        digest = hashlib.sha1(self.email.encode() + str(n).encode()).hexdigest()
        mid = msg_id or f"18{digest[:14]}"
        m = FakeMessage(mid, thread_id or mid, raw, tuple(labels), 1_700_000_000_000 + n * 1000)
        self.messages.append(m)
        return m


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict
    authorization: str | None
    status: int


class FakeGoogle:
    """Start with ``with FakeGoogle() as g:``; use ``g.api_base`` and ``g.token_url``."""

    def __init__(self, client_id: str = "test-client-id.apps.googleusercontent.com",
                 client_secret: str = "test-client-secret", *, max_concurrent: int | None = None,
                 get_delay: float = 0.0):
        self.max_concurrent = max_concurrent
        self.get_delay = get_delay
        self._in_flight: dict[str, int] = {}
        self.peak_in_flight = 0
        self.client_id = client_id
        self.client_secret = client_secret
        self._lock = threading.Lock()
        self._mailboxes: dict[str, Mailbox] = {}
        self._access: dict[str, Mailbox] = {}  # valid access token -> mailbox
        self._expired: set[str] = set()
        self._refresh: dict[str, Mailbox] = {}  # valid refresh token -> mailbox
        self._revoked: set[str] = set()
        self._inject: dict[str, deque[tuple[int, dict]]] = {}
        self._token_counter = itertools.count(1)
        self.requests: list[RequestRecord] = []
        self.refreshes = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- setup -------------------------------------------------------------------------------

    def add_mailbox(self, email: str, *, access_token: str | None = None,
                    refresh_token: str | None = None) -> Mailbox:
        with self._lock:
            rt = refresh_token or f"1//refresh-{email}"
            mb = Mailbox(email, rt)
            self._mailboxes[email] = mb
            self._refresh[rt] = mb
            if access_token:
                self._access[access_token] = mb
            return mb

    def expire(self, access_token: str) -> None:
        with self._lock:
            self._access.pop(access_token, None)
            self._expired.add(access_token)

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            mb = self._refresh.pop(refresh_token, None)
            self._revoked.add(refresh_token)
            if mb is not None:  # revoking a grant kills its access tokens too
                for t in [t for t, m in self._access.items() if m is mb]:
                    self._access.pop(t)
                    self._expired.add(t)

    def inject(self, kind: str, statuses, *, retry_after: str | None = None,
               reason: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after else {}
        with self._lock:
            q = self._inject.setdefault(kind, deque())
            for s in statuses:
                q.append((int(s), {"headers": headers, "reason": reason}))

    def count(self, kind: str) -> int:
        return sum(1 for r in self.requests if _kind(r.method, r.path) == kind)

    # -- server ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_base(self) -> str:
        return self.base_url

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def start(self) -> FakeGoogle:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- request handling --------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        auth = h.headers.get("Authorization")
        kind = _kind(method, parts.path)
        status, payload, headers = self._route(method, parts.path, query, body, auth, kind)
        with self._lock:
            self.requests.append(RequestRecord(method, parts.path, query, auth, status))
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=UTF-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _injected(self, kind: str):
        with self._lock:
            for k in (kind, "any"):
                q = self._inject.get(k)
                if q:
                    return q.popleft()
        return None

    def _route(self, method, path, query, body, auth, kind):
        inj = self._injected(kind)
        if inj is not None:
            status, extra = inj
            return status, _google_error(status, extra.get("reason")), extra.get("headers") or {}
        if kind == "token":
            return self._token(body)
        if kind in ("list", "get"):
            mb, err = self._authenticate(auth)
            if err:
                return err
            if kind == "list":
                return self._list(mb, query)
            msg_id = unquote(path.rsplit("/", 1)[1])
            with self._lock:
                n = self._in_flight.get(mb.email, 0) + 1
                if self.max_concurrent is not None and n > self.max_concurrent:
                    return 429, _google_error(429, "rateLimitExceeded"), {}
                self._in_flight[mb.email] = n
                self.peak_in_flight = max(self.peak_in_flight, n)
            try:
                if self.get_delay:
                    time.sleep(self.get_delay)
                return self._get(mb, msg_id, query)
            finally:
                with self._lock:
                    self._in_flight[mb.email] -= 1
        return 404, _google_error(404), {}

    def _authenticate(self, auth):
        token = auth[7:] if auth and auth.startswith("Bearer ") else None
        with self._lock:
            mb = self._access.get(token) if token else None
        if mb is None:
            return None, (401, _google_error(401), {
                "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})
        return mb, None

    def _list(self, mb: Mailbox, query):
        q = (query.get("q") or [""])[0].strip().lower()
        try:
            size = int((query.get("maxResults") or ["100"])[0])
        except ValueError:
            return 400, _google_error(400, "invalidArgument"), {}
        size = max(1, min(size, 500))
        msgs = list(reversed(mb.messages))  # newest first
        if q:
            if not q.startswith("in:"):
                return 400, _google_error(400, "invalidArgument"), {}
            label = q[3:].upper()
            msgs = [m for m in msgs if label in m.labels]
        token = (query.get("pageToken") or [""])[0]
        start = 0
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode() + b"==").decode().split(":")[1])
            except (ValueError, IndexError):
                return 400, _google_error(400, "invalidArgument"), {}
        page = msgs[start:start + size]
        out: dict = {"resultSizeEstimate": len(msgs)}
        if page:
            out["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
        if start + size < len(msgs):
            out["nextPageToken"] = base64.urlsafe_b64encode(f"p:{start + size}".encode()).decode().rstrip("=")
        return 200, out, {}

    def _get(self, mb: Mailbox, msg_id: str, query):
        fmt = (query.get("format") or ["full"])[0]
        for m in mb.messages:
            if m.id == msg_id:
                if fmt != "raw":
                    return 400, _google_error(400, "invalidArgument"), {}
                return 200, {
                    "id": m.id, "threadId": m.thread_id, "labelIds": list(m.labels),
                    "snippet": "", "sizeEstimate": len(m.raw), "historyId": "1",
                    "internalDate": str(m.internal_date),
                    "raw": base64.urlsafe_b64encode(m.raw).decode().rstrip("="),
                }, {}
        return 404, _google_error(404), {}

    def _token(self, body: bytes):
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}, {}
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}, {}
        rt = form.get("refresh_token", "")
        with self._lock:
            mb = self._refresh.get(rt)
            if mb is None:
                return 400, {"error": "invalid_grant",
                             "error_description": "Token has been expired or revoked."}, {}
            token = f"ya29.fresh-{next(self._token_counter)}-{hashlib.sha1(rt.encode()).hexdigest()[:8]}"
            self._access[token] = mb
            self.refreshes += 1
        return 200, {"access_token": token, "expires_in": 3599,
                     "scope": "https://www.googleapis.com/auth/gmail.readonly",
                     "token_type": "Bearer"}, {}


def _kind(method: str, path: str) -> str:
    if method == "POST" and path == "/token":
        return "token"
    if method == "GET" and path.rstrip("/") == "/gmail/v1/users/me/messages":
        return "list"
    if method == "GET" and path.startswith("/gmail/v1/users/me/messages/"):
        return "get"
    return "other"


_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_MESSAGES = {400: "Invalid argument", 401: "Request had invalid authentication credentials.",
             403: "Forbidden", 404: "Requested entity was not found.",
             429: "Too many concurrent requests for user.", 500: "Internal error",
             503: "The service is currently unavailable."}


def _google_error(status: int, reason: str | None = None) -> dict:
    r = reason or {401: "authError", 404: "notFound", 429: "rateLimitExceeded",
                   503: "backendError", 500: "backendError"}.get(status, "failed")
    domain = "usageLimits" if r in ("rateLimitExceeded", "userRateLimitExceeded") else "global"
    return {"error": {"code": status, "message": _MESSAGES.get(status, "error"),
                      "errors": [{"message": _MESSAGES.get(status, "error"), "domain": domain,
                                  "reason": r}],
                      "status": _STATUS.get(status, "UNKNOWN")}}
