"""A small Gmail REST client: list message ids, fetch raw RFC 822 bytes, refresh tokens.

Only what the EmailAI source needs, on ``httpx``:

- ``GET {api_base}/gmail/v1/users/me/messages?q=in:sent&maxResults=…&pageToken=…`` →
  ``{messages: [{id, threadId}], nextPageToken?, resultSizeEstimate}`` (``messages`` is absent
  when there are none);
- ``GET {api_base}/gmail/v1/users/me/messages/{id}?format=raw`` → ``{raw: base64url}``;
- ``POST {token_url}`` form ``grant_type=refresh_token`` → ``{access_token, expires_in}``, or
  ``400 {error: "invalid_grant"}`` when the grant was revoked or expired.

A 401 triggers one refresh (when a refresh token and client credentials are known) and a retry;
429, 5xx, Gmail's rate-limit 403s and transport errors are retried with exponential backoff and
jitter up to ``max_tries`` attempts, never sooner than a ``Retry-After`` header asks (Gmail API
"Handle errors": https://developers.google.com/workspace/gmail/api/guides/handle-errors — 403
``userRateLimitExceeded``/``rateLimitExceeded``, 429 "Too many concurrent requests for user",
500/503: "retry using exponential backoff"). One client may be used from several threads. Tokens travel only in the ``Authorization`` header or the
token request body, never in URLs, log lines or error messages.
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from mailvoice.errors import MailvoiceError

log = logging.getLogger(__name__)

GMAIL_API_BASE = "https://gmail.googleapis.com"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


@dataclass(frozen=True)
class MessageRef:
    id: str
    thread_id: str | None


class GmailClient:
    """Gmail API access for one mailbox (``users/me``) with one OAuth grant."""

    def __init__(
        self,
        access_token: str | None,
        refresh_token: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        api_base: str = GMAIL_API_BASE,
        token_url: str = GOOGLE_TOKEN_URL,
        max_tries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 32.0,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        on_refresh: Callable[[str, float | None], None] | None = None,
        http: httpx.Client | None = None,
        label: str = "Gmail",
    ):
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self._access_token = access_token or None
        self._refresh_token = refresh_token or None
        self._client_id = client_id or None
        self._client_secret = client_secret or None
        self.api_base = api_base.rstrip("/")
        self.token_url = token_url
        self.max_tries = max_tries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._on_refresh = on_refresh
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self.label = label  # used in messages: the account address, never a token
        self.expires_at: float | None = None
        self.refresh_count = 0
        # fetches may run on several threads (httpx.Client is thread-safe); one refresh at a time
        self._refresh_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> GmailClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:  # never show tokens
        return f"GmailClient({self.label!r}, api_base={self.api_base!r})"

    # -- public API --------------------------------------------------------------------------

    def list_messages(self, q: str = "in:sent", *, page_size: int = 500,
                      limit: int | None = None) -> Iterator[MessageRef]:
        """Yield message refs matching ``q``, following ``nextPageToken`` lazily."""
        page_size = max(1, min(int(page_size), 500))
        url = f"{self.api_base}/gmail/v1/users/me/messages"
        page_token: str | None = None
        seen_tokens: set[str] = set()
        n = 0
        while True:
            params: dict[str, str | int] = {"maxResults": page_size}
            if q:
                params["q"] = q
            if page_token:
                params["pageToken"] = page_token
            data = self._request_json("GET", url, params=params, what="list messages")
            for m in data.get("messages") or ():
                mid = m.get("id")
                if not mid:
                    continue
                yield MessageRef(str(mid), m.get("threadId"))
                n += 1
                if limit is not None and n >= limit:
                    return
            page_token = data.get("nextPageToken") or None
            if not page_token:
                return
            if page_token in seen_tokens:
                raise MailvoiceError(f"{self.label}: Gmail returned a repeated page token; stopping")
            seen_tokens.add(page_token)

    def get_raw(self, message_id: str) -> bytes | None:
        """The message's RFC 822 bytes, or ``None`` when Gmail no longer has it (404)."""
        url = f"{self.api_base}/gmail/v1/users/me/messages/{_path_segment(message_id)}"
        data = self._request_json("GET", url, params={"format": "raw"}, what="get message",
                                  allow_404=True)
        if data is None:
            return None
        raw = data.get("raw")
        if not isinstance(raw, str):
            raise MailvoiceError(f"{self.label}: Gmail returned a message without a raw body")
        return decode_base64url(raw)

    def refresh(self) -> str:
        """Exchange the refresh token for a new access token (and remember it)."""
        if not self._refresh_token:
            raise MailvoiceError(
                f"{self.label}: the access token has expired and no refresh token is stored; "
                "reconnect the account in EmailAI"
            )
        if not (self._client_id and self._client_secret):
            raise MailvoiceError(
                "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set to refresh Gmail tokens"
            )
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        resp = self._send_with_retries(
            lambda: self._http.post(self.token_url, data=form,
                                    headers={"Accept": "application/json"}),
            what="refresh the access token",
        )
        body = _json_or_none(resp)
        if resp.status_code >= 400:
            err = str((body or {}).get("error") or "") if isinstance(body, dict) else ""
            if err == "invalid_grant":
                raise MailvoiceError(
                    f"{self.label}: Google refused the refresh token (invalid_grant): access was "
                    "revoked or has expired; reconnect the account in EmailAI"
                )
            if err in ("invalid_client", "unauthorized_client"):
                raise MailvoiceError(
                    f"Google rejected GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET ({err})"
                )
            raise MailvoiceError(
                f"{self.label}: token refresh failed (HTTP {resp.status_code}"
                f"{', ' + _safe_word(err) if err else ''})"
            )
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise MailvoiceError(f"{self.label}: token refresh returned no access_token")
        self._access_token = token
        expires_in = body.get("expires_in")
        self.expires_at = time.time() + float(expires_in) if isinstance(expires_in, (int, float)) else None
        new_refresh = body.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh:
            self._refresh_token = new_refresh
        self.refresh_count += 1
        log.info("%s: refreshed the Gmail access token", self.label)
        if self._on_refresh is not None:
            self._on_refresh(token, self.expires_at)
        return token

    # -- plumbing ----------------------------------------------------------------------------

    def _request_json(self, method: str, url: str, *, params: dict, what: str,
                      allow_404: bool = False) -> dict | None:
        with self._refresh_lock:
            if not self._access_token:
                self.refresh()
        refreshed = False
        while True:
            used = self._access_token
            resp = self._send_with_retries(
                lambda: self._http.request(
                    method, url, params=params,
                    headers={"Authorization": f"Bearer {used}",
                             "Accept": "application/json"},
                ),
                what=what,
            )
            if resp.status_code == 401:
                if refreshed:
                    raise MailvoiceError(
                        f"{self.label}: Gmail rejected the refreshed access token (HTTP 401)"
                    )
                if not self._refresh_token:
                    raise MailvoiceError(
                        f"{self.label}: Gmail rejected the access token (HTTP 401) and no "
                        "refresh token is stored; reconnect the account in EmailAI"
                    )
                with self._refresh_lock:
                    if self._access_token == used:  # another thread may have refreshed already
                        log.info("%s: Gmail answered 401; refreshing the access token once", self.label)
                        self.refresh()
                refreshed = True
                continue
            if resp.status_code == 404 and allow_404:
                return None
            if resp.status_code >= 400:
                reason = _gmail_reason(resp)
                raise MailvoiceError(
                    f"{self.label}: Gmail API could not {what} (HTTP {resp.status_code}"
                    f"{', ' + reason if reason else ''})"
                )
            body = _json_or_none(resp)
            if not isinstance(body, dict):
                raise MailvoiceError(f"{self.label}: Gmail API returned a non-JSON answer to {what}")
            return body

    def _send_with_retries(self, send: Callable[[], httpx.Response], *, what: str) -> httpx.Response:
        last = ""
        for attempt in range(1, self.max_tries + 1):
            try:
                resp = send()
            except httpx.TransportError as e:
                last = f"network error: {type(e).__name__}"
                retry_after = None
            else:
                if not _is_retryable(resp):
                    return resp
                last = f"HTTP {resp.status_code}"
                retry_after = _retry_after(resp)
            if attempt >= self.max_tries:
                break
            delay = self._backoff(attempt, retry_after)
            log.warning("%s: %s while trying to %s; retry %d/%d in %.2fs",
                        self.label, last, what, attempt, self.max_tries - 1, delay)
            self._sleep(delay)
        raise MailvoiceError(
            f"{self.label}: could not {what}: still failing after {self.max_tries} tries ({last})"
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        delay = random.uniform(cap / 2, cap)  # "equal jitter"
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay


# -- helpers -----------------------------------------------------------------------------------

def decode_base64url(data: str) -> bytes:
    """Gmail's base64url, with or without ``=`` padding."""
    s = data.strip().replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise MailvoiceError("Gmail returned a raw body that is not valid base64url") from None


def encode_base64url(raw: bytes, *, padding: bool = True) -> str:
    s = base64.urlsafe_b64encode(raw).decode("ascii")
    return s if padding else s.rstrip("=")


def _path_segment(s: str) -> str:
    from urllib.parse import quote
    return quote(s, safe="")


def _json_or_none(resp: httpx.Response):
    try:
        return resp.json()
    except ValueError:
        return None


def _gmail_error_reasons(resp: httpx.Response) -> list[str]:
    body = _json_or_none(resp)
    if not isinstance(body, dict):
        return []
    err = body.get("error")
    if not isinstance(err, dict):
        return []
    out = []
    for e in err.get("errors") or ():
        if isinstance(e, dict) and isinstance(e.get("reason"), str):
            out.append(e["reason"])
    for d in err.get("details") or ():
        if isinstance(d, dict) and isinstance(d.get("reason"), str):
            out.append(d["reason"])
    if isinstance(err.get("status"), str):
        out.append(err["status"])
    return out


def _gmail_reason(resp: httpx.Response) -> str:
    reasons = _gmail_error_reasons(resp)
    return _safe_word(reasons[0]) if reasons else ""


def _safe_word(s: str) -> str:
    """Keep machine-readable reason codes only (no free text that could echo anything)."""
    return "".join(c for c in s if c.isalnum() or c in "_-.")[:64]


def _is_retryable(resp: httpx.Response) -> bool:
    if resp.status_code in _RETRY_STATUSES:
        return True
    if resp.status_code == 403:
        return any(r in _RATE_LIMIT_REASONS for r in _gmail_error_reasons(resp))
    return False


def _retry_after(resp: httpx.Response) -> float | None:
    v = resp.headers.get("Retry-After")
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None
