"""A small client for the parts of Ollama's REST API that a deploy needs.

Follows ollama/ollama docs/api.md: ``HEAD/POST /api/blobs/sha256:<hex>`` (201 created, 400 on a
digest mismatch), ``POST /api/create`` (an NDJSON stream of ``{"status": …}`` ending in
``{"status": "success"}``, or an ``{"error": …}`` line or an HTTP error with that body),
``/api/generate``, ``/api/tags``, ``/api/show``, ``DELETE /api/delete`` and ``/api/version``.
Every failure becomes a one-line ``MailvoiceError``; prompts and replies are never logged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from ..errors import MailvoiceError

DEFAULT_URL = "http://127.0.0.1:11434"


def normalise_url(url: str | None) -> str:
    """``OLLAMA_HOST`` style (``host:port``, ``http://host``, with or without ``/api``) → base URL.

    Only a plain-HTTP host without a port (``http://gpu-box``, ``gpu-box``) gets Ollama's default
    port: an ``https://`` URL or one with a path is a proxy's address (the fork's own example is
    ``https://ai.calldata.app/api``) and keeps its scheme's port and its path."""
    url = (url or os.environ.get("OLLAMA_HOST") or DEFAULT_URL).strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    if url.endswith("/api"):
        url = url[: -len("/api")]
    scheme, rest = url.split("://", 1)
    host, sep, path = rest.partition("/")
    if scheme.lower() == "http" and not path and ":" not in host.rsplit("]", 1)[-1]:
        host += ":11434"
    return f"{scheme}://{host}{sep}{path}"


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split("-")[0].split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


class OllamaClient:
    def __init__(self, url: str | None = None, *, timeout: float = 600.0):
        self.url = normalise_url(url)
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout, connect=5.0))

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------------------------- plumbing
    def _request(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            return self._http.request(method, path, **kw)
        except httpx.ConnectError:
            raise MailvoiceError(f"Ollama is not reachable at {self.url} (is `ollama serve` running? set --ollama-url)") from None
        except httpx.TimeoutException:
            raise MailvoiceError(f"Ollama at {self.url} timed out on {path}") from None
        except httpx.HTTPError as e:
            raise MailvoiceError(f"Ollama request {path} failed: {type(e).__name__}") from None

    @staticmethod
    def _error_of(r: httpx.Response) -> str:
        try:
            body = r.json()
            if isinstance(body, dict) and body.get("error"):
                return str(body["error"]).splitlines()[0][:300]
        except (json.JSONDecodeError, ValueError):
            pass
        return f"HTTP {r.status_code}"

    def _json(self, method: str, path: str, **kw) -> dict:
        r = self._request(method, path, **kw)
        if r.status_code >= 400:
            raise MailvoiceError(f"Ollama {path}: {self._error_of(r)}")
        return r.json()

    # ---------------------------------------------------------------------------------- endpoints
    def version(self) -> str:
        return str(self._json("GET", "/api/version").get("version", "0"))

    def version_tuple(self) -> tuple[int, ...]:
        return _version_tuple(self.version())

    def has_blob(self, digest: str) -> bool:
        r = self._request("HEAD", f"/api/blobs/{digest}")
        return r.status_code == 200

    def push_blob(self, path: Path, digest: str) -> None:
        """Upload a file unless the server already has it (digest ``sha256:<hex>``)."""
        if self.has_blob(digest):
            return
        size = Path(path).stat().st_size

        def chunks():
            with open(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    yield block

        r = self._request("POST", f"/api/blobs/{digest}", content=chunks(), headers={"Content-Length": str(size)})
        if r.status_code not in (200, 201):
            raise MailvoiceError(f"Ollama refused blob {digest[:19]}…: {self._error_of(r)}")

    def create(self, body: dict, on_status=None) -> list[str]:
        """POST /api/create and follow its NDJSON stream; → the status lines."""
        statuses: list[str] = []
        try:
            with self._http.stream("POST", "/api/create", json={**body, "stream": True}) as r:
                if r.status_code >= 400:
                    r.read()
                    raise MailvoiceError(f"Ollama could not create {body.get('model')}: {self._error_of(r)}")
                for line in r.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        msg = json.loads(line)
                    except json.JSONDecodeError:
                        raise MailvoiceError("Ollama /api/create sent a line that is not JSON") from None
                    if msg.get("error"):
                        raise MailvoiceError(f"Ollama could not create {body.get('model')}: {str(msg['error']).splitlines()[0][:300]}")
                    if status := msg.get("status"):
                        statuses.append(status)
                        if on_status:
                            on_status(status)
        except httpx.ConnectError:
            raise MailvoiceError(f"Ollama is not reachable at {self.url} (is `ollama serve` running? set --ollama-url)") from None
        except httpx.HTTPError as e:
            raise MailvoiceError(f"Ollama /api/create failed: {type(e).__name__}") from None
        if not statuses or statuses[-1] != "success":
            raise MailvoiceError(f"Ollama did not confirm creating {body.get('model')} (stream ended without success)")
        return statuses

    def generate(self, model: str, prompt: str, *, options: dict | None = None, system: str | None = None) -> dict:
        body = {"model": model, "prompt": prompt, "stream": False, "options": options or {}}
        if system is not None:
            body["system"] = system
        return self._json("POST", "/api/generate", json=body)

    def chat(self, model: str, messages: list[dict], *, options: dict | None = None) -> dict:
        return self._json("POST", "/api/chat", json={"model": model, "messages": messages, "stream": False, "options": options or {}})

    def tags(self) -> list[dict]:
        return self._json("GET", "/api/tags").get("models", [])

    def has_model(self, name: str) -> bool:
        full = name if ":" in name else name + ":latest"
        return any(m.get("name") in (name, full) or m.get("model") in (name, full) for m in self.tags())

    def show(self, name: str) -> dict:
        return self._json("POST", "/api/show", json={"model": name})

    def delete(self, name: str) -> bool:
        r = self._request("DELETE", "/api/delete", json={"model": name})
        if r.status_code == 404:
            return False
        if r.status_code >= 400:
            raise MailvoiceError(f"Ollama could not delete {name}: {self._error_of(r)}")
        return True
