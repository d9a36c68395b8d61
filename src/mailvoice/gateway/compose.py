"""Drafting outside EmailAI: ``mailvoice write`` and the MCP ``draft_email`` tool.

The prompt is the training prompt (``chat.instruction_for`` with the notes, and the email
being answered when there is one, PII-scrubbed like the training data and the gateway's
prompts). The model is the user's, found through the deploy registry: either called on a
server (``--upstream``: Ollama ``/api/chat`` or an OpenAI-compatible ``/v1``, model
``emailai-<id>``), or loaded locally from the registry's adapter path (transformers + PEFT;
no server needed). ``candidates > 1`` samples N drafts and
keeps the one the user's style classifier (the evaluate stage's ``AuthorshipClassifier``,
fitted on the user's training replies vs the control authors) scores highest.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path

import httpx

from ..artifacts import TRAIN_CHAT, Adapter, find_retrieval
from ..chat import SYSTEM_PROMPT, instruction_for, recipient_name, reply_subject
from ..clean import extract_author_text
from ..dataset.pii import scrub_subject
from ..errors import MailvoiceError
from ..evaluate.rerank import Reranker
from ..sources import parse_message
from ..sources.parse import header_problem, parse_bytes
from .emailai_calls import protected_names, scrub_text


@dataclass
class Draft:
    text: str
    user_id: str
    model: str
    candidates: int = 1
    scores: list[float] = field(default_factory=list)
    timings: dict = field(default_factory=dict)


def instruction_from(notes: str, reply_to: Path | None = None, *, subject: str = "", recipient: str = "",
                     retrieve=None) -> str:
    """The training prompt for ``notes``; with ``reply_to`` (an .eml), a reply to its cleaned body,
    PII-scrubbed as the gateway and the training data do (the recipients' display names, the
    user's among them, protected as ``dataset.build`` protects the user's names). ``retrieve(query)``
    gives the user's past emails when the adapter was trained with them (``rag``)."""
    from ..rag.index import query_text

    def build(subject: str, recipient: str, replying_to: str | None) -> str:
        q = query_text(subject=subject, notes=notes, replying_to=replying_to)
        return instruction_for(subject=subject, recipient=recipient, replying_to=replying_to, notes=notes or None,
                               examples=retrieve(q) if retrieve and q else ())

    if reply_to is None:
        return build(subject, recipient, None)
    p = Path(reply_to)
    if not p.is_file():
        raise MailvoiceError(f"file not found: {p}")
    raw = p.read_bytes()
    problem = header_problem(raw)  # the caps every mail source applies, before any parsing
    if problem:
        raise MailvoiceError(f"cannot read {p.name} ({problem.replace('_', ' ')})")
    rec = parse_message(raw, source=f"eml:{p.name}")
    body = extract_author_text(rec.text, rec.html).text
    try:
        h = parse_bytes(raw)
        names = [n for n, _ in getaddresses([str(v) for v in (h.get_all("to") or []) + (h.get_all("cc") or [])])]
    except Exception:  # noqa: BLE001 - a header surprise only costs the protection of names
        names = []
    protect = protected_names(names)
    subj = reply_subject(subject or scrub_subject(rec.subject or "", protect=protect).text)
    return build(subj, recipient or recipient_name(rec.from_addr), scrub_text(body, protect) or "(no text)")


# --------------------------------------------------------------------------------- style scorer
class StyleScorer:
    """(user_id, texts[, notes]) → a rerank score per text (``evaluate.rerank``: P(written by the
    user) from the authorship classifier, less habit distance, plus note coverage); one
    reranker per user, fitted on their training replies against the control authors, cached."""

    def __init__(self, root=None):
        self.root = root
        self._rerankers: dict[str, Reranker] = {}
        self._lock = threading.Lock()

    def reranker(self, user_id: str) -> Reranker:
        with self._lock:
            if user_id not in self._rerankers:
                from ..evaluate.run import load_control, reply, split_control
                from ..workspace import read_jsonl, user_space

                data = user_space(user_id, self.root).data
                rows = read_jsonl(data / TRAIN_CHAT) if (data / TRAIN_CHAT).is_file() else []
                if not rows:
                    raise MailvoiceError(f"no training data for {user_id} to fit a style classifier (run prepare)")
                control, _ = load_control(None, lambda m: None)
                other, _ = split_control(control)
                self._rerankers[user_id] = Reranker([reply(r) for r in rows], [reply(r) for r in other])
            return self._rerankers[user_id]

    def __call__(self, user_id: str, texts: list[str], notes: str | None = None,
                 stopped: list[bool] | None = None) -> list[float]:
        return self.reranker(user_id)(texts, notes, stopped)


# --------------------------------------------------------------------------------- generation
def _record(user_id: str, root) -> dict:
    from ..deploy import registry

    return registry.load(user_id, root)


def generate_remote(upstream: str, model: str, instruction: str, *, api: str = "ollama", n: int = 1,
                    temperature: float | None = None, max_tokens: int | None = None, token: str | None = None,
                    timeout: float = 300.0) -> list[dict]:
    """``n`` drafts as ``{text, stopped}`` (``stopped``: the server ended it, not the token limit:
    Ollama's ``done_reason``, OpenAI's ``finish_reason``)."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": instruction}]
    base = upstream.rstrip("/").removesuffix("/api").removesuffix("/v1")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    out = []
    with httpx.Client(timeout=timeout, headers=headers) as c:
        for i in range(n):
            try:
                if api == "ollama":
                    opts = {"seed": i}
                    if temperature is not None:
                        opts["temperature"] = temperature
                    if max_tokens:
                        opts["num_predict"] = max_tokens
                    r = c.post(base + "/api/chat", json={"model": model, "messages": messages, "stream": False, "options": opts})
                else:
                    body = {"model": model, "messages": messages, "stream": False, "seed": i}
                    if temperature is not None:
                        body["temperature"] = temperature
                    if max_tokens:
                        body["max_tokens"] = max_tokens
                    r = c.post(base + "/v1/chat/completions", json=body)
            except httpx.HTTPError as e:
                raise MailvoiceError(f"cannot reach {base}: {type(e).__name__}") from None
            if r.status_code >= 400:
                raise MailvoiceError(f"{base} answered HTTP {r.status_code} for model {model}")
            j = r.json()
            if api == "ollama":
                text, ended = (j.get("message") or {}).get("content", ""), j.get("done_reason") != "length"
            else:
                ch = j["choices"][0]
                text, ended = ch["message"]["content"], ch.get("finish_reason") != "length"
            out.append({"text": (text or "").strip(), "stopped": ended})
    return out


_LOCAL: dict[str, tuple] = {}


def generate_local(adapter: Path, instruction: str, *, n: int = 1, temperature: float | None = None,
                   max_tokens: int = 200) -> list[dict]:
    """``n`` drafts as ``{text, stopped}`` from the adapter loaded here (cached per process)."""
    from ..evaluate.generate import GenOptions, generate, load_tuned

    adapter = Adapter.open(adapter).path
    key = str(adapter.absolute())
    if key not in _LOCAL:
        _LOCAL[key] = load_tuned(adapter)
    model, tok = _LOCAL[key]
    temp = temperature if temperature is not None else (0.7 if n > 1 else 0.0)
    # the n candidates in one batch: row i samples with seed i, as one call per candidate did
    outs = generate(model, tok, [instruction] * n, GenOptions(max_new_tokens=max_tokens, temperature=temp, seed=0))
    return [{"text": o["text"], "stopped": o["stopped"]} for o in outs]


def _retriever(adapter):
    """The adapter's retrieval index as a query → examples function, or None (no ``rag``)."""
    from ..rag.index import load_cached

    folder = find_retrieval(adapter)
    return load_cached(folder).examples_for if folder else None


def write_draft(notes: str, user_id: str, *, root=None, reply_to: Path | None = None, candidates: int = 1,
                upstream: str | None = None, api: str = "ollama", model_dir: Path | None = None,
                temperature: float | None = None, max_tokens: int = 200, scorer=None, token: str | None = None,
                subject: str = "", recipient: str = "") -> Draft:
    """One draft in ``user_id``'s voice (best of ``candidates``)."""
    from ..workspace import validate_user_id

    validate_user_id(user_id)
    try:  # read once: the model name, the adapter and its retrieval index all come from it
        record, missing = _record(user_id, root), None
    except MailvoiceError as e:
        record, missing = {}, e
    adapter = model_dir or record.get("adapter")
    instr = instruction_from(notes, reply_to, subject=subject, recipient=recipient, retrieve=_retriever(adapter))
    t0 = time.perf_counter()
    if upstream:
        from ..deploy.modelfile import model_name

        model = record.get("model") or model_name(user_id)
        drafts = generate_remote(upstream, model, instr, api=api, n=candidates, max_tokens=max_tokens,
                                temperature=temperature if temperature is not None else (0.7 if candidates > 1 else None),
                                token=token)
    else:
        if not adapter:
            if missing is not None:
                raise missing
            raise MailvoiceError(f"the registry record for {user_id} names no adapter; pass --model")
        model = str(adapter)
        drafts = generate_local(Path(adapter), instr, n=candidates, temperature=temperature, max_tokens=max_tokens)
    timings = {"generate_s": round(time.perf_counter() - t0, 3)}
    texts = [d["text"] for d in drafts]
    scores: list[float] = []
    best = 0
    if candidates > 1:
        t = time.perf_counter()
        sc = scorer or StyleScorer(root)
        scores = sc(user_id, texts, notes or None, stopped=[d["stopped"] for d in drafts])
        best = max(range(len(texts)), key=lambda i: scores[i])
        timings["score_s"] = round(time.perf_counter() - t, 3)
    return Draft(texts[best], user_id, model, candidates, scores, timings)
