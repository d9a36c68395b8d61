"""Reverse instructions ("data playback", Panza: arXiv 2407.10994): an LLM writes the instruction
that would have produced each email, and that instruction replaces the heuristic ``task_line``.

``prepare --instructions llm`` with one of these backends:

- ``--llm-url URL [--llm-model NAME]``: an HTTP endpoint. OpenAI-compatible
  (``POST {url}/v1/chat/completions``: vLLM, llama-server, LM Studio, OpenAI itself) or
  Ollama-compatible (``POST {url}/api/chat`` with ``stream: false``). Which one is decided from
  the URL: a path ending in ``/api`` or port 11434 means Ollama, anything else OpenAI; an
  ``ollama+`` or ``openai+`` prefix (``ollama+http://host:8080``) forces it. Without
  ``--llm-model`` the first model the server lists (``/v1/models``, ``/api/tags``) is used. An
  API key, if the server wants one, comes from ``MAILVOICE_LLM_API_KEY`` (sent as a Bearer token).
- ``--llm-model NAME`` alone: a local transformers model, anything
  ``models.resolve_base_model`` accepts (a preset such as ``smollm2-135m``, a folder, an HF id).

Privacy: the model only ever sees the *scrubbed* text (``pii.scrub`` placeholders), the scrubbed
subject and the recipient's first name; never an address, a header or the raw body.

Cache: ``instructions-cache.jsonl`` in the dataset folder (0600), one ``{"key", "raw"}`` line
per call, keyed by sha256 of (prompt version, backend kind, model, the full prompt, which holds
the message text). A rerun never calls the model again for an email it has seen; the raw answer
is stored, so a better :func:`sanitise_instruction` needs no new calls.

Sanitising keeps one or two sentences, strips quotes, ``Instruction:``-style prefixes and chat
tokens, caps the length, and rejects junk (too short, not an imperative, repetitive, symbols);
a rejected answer falls back to the heuristic ``task_line`` and is counted as
``instructions_fallback`` in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from ..errors import MailvoiceError

PROMPT_VERSION = "reverse-v1"
CACHE_FILE = "instructions-cache.jsonl"
MAX_CHARS = 280
EMAIL_CHARS = 2000  # the email shown to the model, truncated
CONTEXT_CHARS = 800  # the message it replies to, truncated

REVERSE_SYSTEM = (
    "You are shown an email that someone wrote. Write the instruction they could have given an "
    "assistant to get exactly this email written: one or two sentences in the imperative, starting "
    "with \"Write an email\" or \"Write a reply\", naming the recipient and the main points. "
    "Do not quote the email. Answer with the instruction only."
)

IMPERATIVES = frozenset(
    """write reply respond answer send draft compose email tell ask thank let confirm follow invite
    decline accept share update remind apologize apologise congratulate explain offer request schedule
    check introduce give say inform propose suggest agree arrange forward wish welcome notify book
    cancel acknowledge provide recommend reassure encourage approve reject turn""".split()
)


# --------------------------------------------------------------------------------------------- prompt
def reverse_messages(*, email: str, subject: str = "", recipient: str = "", replying_to: str | None = None) -> list[dict]:
    """The chat messages sent to the instruction model. Inputs must already be scrubbed."""
    parts = [f"To: {recipient}" if recipient else "To: (unknown)"]
    if subject:
        parts.append(f"Subject: {subject}")
    if replying_to:
        parts.append(f"\nIt replies to this email:\n{_clip(replying_to, CONTEXT_CHARS)}")
    parts.append(f"\nThe email:\n{_clip(email, EMAIL_CHARS)}")
    parts.append("\nThe instruction for the email above:")
    return [
        {"role": "system", "content": REVERSE_SYSTEM},
        {"role": "user", "content": "\n".join(parts)},
    ]


def _clip(text: str, n: int) -> str:
    text = text.strip()
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " …"


# --------------------------------------------------------------------------------------------- sanitise
_PREFIX = re.compile(
    r"^(?:(?:sure|okay|ok)[,!.]?\s*)?(?:here(?:'s| is)\s+(?:the|an|your|my)\s+)?"
    r"(?:(?:reverse\s+)?instruction|prompt|task|request|answer|output|response)s?\s*(?:for[^:]{0,40})?[:\-–—]\s*",
    re.I,
)
_LEAD = re.compile(
    r"^(?:the\s+|your\s+|an?\s+)?(?:reverse\s+)?(?:instruction|task|prompt|request)\s+"
    r"(?:is|would be|could be|will be|should be)\s*(?:to\s+|:\s*)?",
    re.I,
)
_SPECIAL = re.compile(r"<\|[^|<>]{0,40}\|>|</?s>|\[/?INST\]")
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_QUOTES = " \t\"'“”‘’`*_#>-"


def sanitise_instruction(raw: str | None, max_chars: int = MAX_CHARS) -> str | None:
    """One or two clean imperative sentences, or ``None`` when the answer is junk."""
    if not raw or not isinstance(raw, str):
        return None
    text = _SPECIAL.sub(" ", _THINK.sub("", raw)).replace("```", "\n")
    cand = ""
    for line in text.splitlines():
        line = line.strip().strip(_QUOTES)
        line = _PREFIX.sub("", line).strip().strip(_QUOTES)
        line = _LEAD.sub("", line).strip().strip(_QUOTES)
        if line.lower().rstrip(":") in ("assistant", "user", "system"):  # a role header left by a chat token
            continue
        if line:
            cand = line
            break
    cand = re.sub(r"\s+", " ", cand).strip()
    if not cand:
        return None
    sentences = re.split(r"(?<=[.!?])\s+", cand)
    cand = " ".join(sentences[:2]).strip().strip(_QUOTES)
    if len(cand) > max_chars:
        cand = cand[:max_chars].rsplit(" ", 1)[0].rstrip(",;:–- ")
    if not _looks_like_instruction(cand):
        return None
    cand = cand[0].upper() + cand[1:]
    if not cand.endswith((".", "!", "?")):
        cand += "."
    return cand


def _looks_like_instruction(text: str) -> bool:
    words = re.findall(r"[A-Za-z][A-Za-z'’]*", text)
    if len(words) < 4 or words[0].lower() not in IMPERATIVES:
        return False
    if sum(c.isalpha() or c.isspace() for c in text) / len(text) < 0.8:
        return False
    lowered = [w.lower() for w in words]
    if len(set(lowered)) / len(lowered) < 0.5:
        return False
    common = Counter(w for w in lowered if len(w) > 3).most_common(1)
    return not (common and common[0][1] > 3)


# --------------------------------------------------------------------------------------------- backends
class Backend:
    kind = ""
    model = ""

    def complete(self, messages: list[dict]) -> str:  # pragma: no cover - interface
        raise NotImplementedError


def _redact(url: str) -> str:
    from ..redact import redact_url  # one home for URL redaction (a raw '@', '/' or ?password= in a URL)

    return redact_url(url)


class _HTTPBackend(Backend):
    path = ""

    def __init__(self, url: str, model: str | None = None, *, timeout: float = 60.0, retries: int = 2,
                 api_key: str | None = None, transport=None):
        import httpx

        self.base = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        key = api_key if api_key is not None else os.environ.get("MAILVOICE_LLM_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), headers=headers, transport=transport)
        self.model = model or self._default_model()

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        import httpx

        url = self.base + path
        shown = _redact(url)
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(4.0, 0.5 * 2 ** (attempt - 1)))
            try:
                r = self._client.request(method, url, json=body)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout:g}s"
                continue
            except httpx.TransportError as e:
                last = f"could not connect ({type(e).__name__})"
                continue
            if r.status_code == 429 or r.status_code >= 500:
                last = f"HTTP {r.status_code}"
                continue
            if r.status_code >= 400:
                hint = {401: "; set MAILVOICE_LLM_API_KEY", 403: "; set MAILVOICE_LLM_API_KEY",
                        404: "; check --llm-url and --llm-model"}.get(r.status_code, "")
                raise MailvoiceError(f"instruction model at {shown}: HTTP {r.status_code}{hint}")
            try:
                data = r.json()
            except ValueError:
                raise MailvoiceError(f"instruction model at {shown}: the answer is not JSON") from None
            if not isinstance(data, dict):
                raise MailvoiceError(f"instruction model at {shown}: unexpected answer shape")
            return data
        tries = self.retries + 1
        raise MailvoiceError(f"instruction model at {shown}: {last} ({tries} attempt{'s' if tries > 1 else ''})")

    def _default_model(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        self._client.close()


class OpenAIBackend(_HTTPBackend):
    """``POST {url}/v1/chat/completions`` → ``choices[0].message.content``."""

    kind = "openai"

    def __init__(self, url: str, model: str | None = None, **kw):
        url = url.rstrip("/")
        super().__init__(url[: -len("/v1")] if url.endswith("/v1") else url, model, **kw)

    def _default_model(self) -> str:
        data = self._request("GET", "/v1/models")
        models = [m.get("id") for m in data.get("data") or [] if isinstance(m, dict) and m.get("id")]
        if not models:
            raise MailvoiceError(f"{_redact(self.base)} lists no models: pass --llm-model NAME")
        return str(models[0])

    def complete(self, messages: list[dict]) -> str:
        data = self._request("POST", "/v1/chat/completions", {
            "model": self.model, "messages": messages, "temperature": 0, "max_tokens": 96, "stream": False,
        })
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise MailvoiceError(f"instruction model at {_redact(self.base)}: no choices[0].message.content") from None
        return content if isinstance(content, str) else ""


class OllamaBackend(_HTTPBackend):
    """``POST {url}/api/chat`` (``stream: false``) → ``message.content``."""

    kind = "ollama"

    def __init__(self, url: str, model: str | None = None, **kw):
        url = url.rstrip("/")
        super().__init__(url[: -len("/api")] if url.endswith("/api") else url, model, **kw)

    def _default_model(self) -> str:
        data = self._request("GET", "/api/tags")
        models = [m.get("name") or m.get("model") for m in data.get("models") or [] if isinstance(m, dict)]
        models = [m for m in models if m]
        if not models:
            raise MailvoiceError(f"{_redact(self.base)} lists no models: pass --llm-model NAME")
        return str(models[0])

    def complete(self, messages: list[dict]) -> str:
        data = self._request("POST", "/api/chat", {
            "model": self.model, "messages": messages, "stream": False,
            "options": {"temperature": 0, "num_predict": 96},
        })
        if data.get("error"):
            raise MailvoiceError(f"instruction model at {_redact(self.base)}: the server reported an error")
        msg = data.get("message")
        content = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(content, str):
            raise MailvoiceError(f"instruction model at {_redact(self.base)}: no message.content in the answer")
        return content


class LocalBackend(Backend):
    """A transformers causal LM on this machine, greedy decoding, short answers."""

    kind = "local"

    def __init__(self, name: str, *, max_new_tokens: int = 48):
        self.model = name
        self.max_new_tokens = max_new_tokens
        self._loaded = None

    def _load(self):
        if self._loaded is None:
            from ..models import resolve_base_model

            path = resolve_base_model(self.model)
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                tok = AutoTokenizer.from_pretrained(path)
                model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            except (OSError, ValueError) as e:
                raise MailvoiceError(f"could not load the instruction model {self.model!r} ({type(e).__name__})") from None
            model.eval()
            self._loaded = (tok, model)
        return self._loaded

    def complete(self, messages: list[dict]) -> str:
        import torch

        tok, model = self._load()
        if getattr(tok, "chat_template", None):
            prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            from ..chat import format_for

            prompt = format_for(tok).render_prompt(messages[-1]["content"], messages[0]["content"])
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and enc["input_ids"].shape[1] > limit - self.max_new_tokens:
            keep = max(1, limit - self.max_new_tokens)  # a small context: keep the end (the question)
            enc = {k: v[:, -keep:] for k, v in enc.items()}
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad)
        return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def detect_api(url: str) -> tuple[str, str]:
    """(``openai`` | ``ollama``, url without a forcing prefix)."""
    for kind in ("ollama", "openai"):
        if url.startswith(f"{kind}+"):
            return kind, url[len(kind) + 1:]
    p = urlparse(url)
    if p.scheme not in ("http", "https") or not p.netloc:
        raise MailvoiceError(f"--llm-url must be an http(s) URL, got {_redact(url)!r}")
    path = p.path.rstrip("/")
    if path.endswith("/api") or (p.port == 11434 and not path.endswith("/v1")):
        return "ollama", url
    return "openai", url


def make_backend(*, url: str | None = None, model: str | None = None, timeout: float = 60.0,
                 retries: int = 2) -> Backend:
    if url:
        kind, url = detect_api(url)
        cls = OllamaBackend if kind == "ollama" else OpenAIBackend
        return cls(url, model, timeout=timeout, retries=retries)
    if model:
        return LocalBackend(model)
    raise MailvoiceError("--instructions llm needs --llm-url URL (an OpenAI/Ollama endpoint) or --llm-model NAME (a local model)")


# --------------------------------------------------------------------------------------------- cache
class InstructionCache:
    """Append-only JSONL of raw model answers, private (0600), tolerant of a torn last line."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._data: dict[str, str] = {}
        if self.path.is_file():
            with self.path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                        self._data[row["key"]] = row["raw"]
                    except (ValueError, KeyError, TypeError):
                        continue

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def put(self, key: str, raw: str) -> None:
        from ..workspace import make_private_dir

        self._data[key] = raw
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (json.dumps({"key": key, "raw": raw}, ensure_ascii=False) + "\n").encode())
        finally:
            os.close(fd)


def cache_key(backend: Backend, messages: list[dict]) -> str:
    blob = json.dumps([PROMPT_VERSION, backend.kind, backend.model, messages], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# --------------------------------------------------------------------------------------------- apply
@dataclass
class InstructionStats:
    backend: str = ""
    model: str = ""
    called: int = 0
    cached: int = 0
    fallback: int = 0
    generated: int = 0

    def as_dict(self) -> dict:
        return {"method": "llm", "backend": self.backend, "model": self.model, "prompt_version": PROMPT_VERSION,
                "generated": self.generated, "fallback": self.fallback, "model_calls": self.called,
                "cache_hits": self.cached}


def messages_for(example, keep_urls: bool = False) -> list[dict]:
    """The reverse prompt for a ``build.Example`` (its output and input are already scrubbed)."""
    from .pii import scrub

    subject = scrub(example.subject, keep_urls=keep_urls).text if example.subject else ""
    return reverse_messages(email=example.output, subject=subject, recipient=example.recipient,
                            replying_to=example.input or None)


def apply_llm_instructions(examples: Sequence, backend: Backend, cache: InstructionCache, *,
                           keep_urls: bool = False, progress: Callable[[int], None] | None = None) -> tuple[list, InstructionStats]:
    """Each example with its generated instruction (``llm_instruction`` and ``instruction``), or unchanged."""
    stats = InstructionStats(backend=backend.kind, model=backend.model)
    out = []
    for ex in examples:
        msgs = messages_for(ex, keep_urls)
        key = cache_key(backend, msgs)
        if key in cache:
            raw = cache.get(key)
            stats.cached += 1
        else:
            raw = backend.complete(msgs)
            stats.called += 1
            cache.put(key, raw)
        clean = sanitise_instruction(raw)
        if clean:
            stats.generated += 1
            out.append(replace(ex, instruction=clean, llm_instruction=clean))
        else:
            stats.fallback += 1
            out.append(ex)
        if progress:
            progress(1)
    return out, stats


def generate_for_dataset(examples: Iterable, out_dir: Path, *, url: str | None, model: str | None,
                         keep_urls: bool = False) -> tuple[list, dict]:
    backend = make_backend(url=url, model=model)
    try:
        examples, stats = apply_llm_instructions(list(examples), backend, InstructionCache(Path(out_dir) / CACHE_FILE),
                                                 keep_urls=keep_urls)
    finally:
        if isinstance(backend, _HTTPBackend):
            backend.close()
    return examples, stats.as_dict()


__all__ = [
    "PROMPT_VERSION", "CACHE_FILE", "reverse_messages", "sanitise_instruction", "Backend", "OpenAIBackend",
    "OllamaBackend", "LocalBackend", "detect_api", "make_backend", "InstructionCache", "cache_key",
    "InstructionStats", "messages_for", "apply_llm_instructions", "generate_for_dataset",
]
