"""Recognise EmailAI's drafting call and turn it into our training prompt.

EmailAI (Inbox Zero) drafts a reply with ``aiDraftWithKnowledge``
(``apps/web/utils/ai/reply/draft-with-knowledge.ts``): a system text that begins "You are an
expert assistant that drafts email replies", a user prompt holding the thread as
``<email><from>…</from><to>…</to><subject>…</subject><body>…</body><date>…</date></email>``
blocks (``stringifyEmail``: fields HTML-escaped), "Please write a reply to the email." and the
account it writes for — "IMPORTANT: The person you're writing an email for is: X." (fork and
older upstream) or "IMPORTANT: You are writing an email as X." (newer upstream) — and a
``{reply: string}`` schema. Every other AI call (rule matching, categorisation, summaries…)
is not recognised and passes through.

The dataset side's ``mailvoice.dataset.emailai_format.parse_emailai_request`` is used when it
exists; this module is the fallback with the same result fields (``account_email``,
``thread``, ``instructions``), so the gateway works either way.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

from ..chat import instruction_for

SYSTEM_MARKERS = ("drafts email replies",)
THREAD_MARKER = "Here is the context of the email thread"
_ACCOUNT = re.compile(
    r"IMPORTANT:\s*(?:The person you're writing an email for is|You are writing an email as):?\s*(?P<who>[^\n]+)")
_EMAIL_BLOCK = re.compile(r"<email>\s*(.*?)\s*</email>", re.S)
_ADDR = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_JSON_SCHEMA_IN_SYSTEM = re.compile(r"JSON schema:\s*(\{.*\})\s*\n", re.S)


@dataclass
class ThreadEmail:
    sender: str = ""
    to: str = ""
    subject: str = ""
    body: str = ""
    date: str = ""


@dataclass
class ParsedDraftRequest:
    account_email: str
    thread: list[ThreadEmail] = field(default_factory=list)
    instructions: str | None = None
    schema: dict | None = None  # a JSON schema found in the prompt (AI SDK json mode), if any


def _tag(block: str, name: str) -> str:
    m = re.search(rf"<{name}>(.*?)</{name}>", block, re.S)
    return html.unescape(m.group(1).strip()) if m else ""


def address_of(text: str) -> str:
    m = _ADDR.search(text or "")
    return m.group(0).lower() if m else ""


def _content(msg) -> str:
    c = msg.get("content") if isinstance(msg, dict) else None
    if isinstance(c, list):  # OpenAI content parts
        return "\n".join(p.get("text", "") for p in c if isinstance(p, dict))
    return c if isinstance(c, str) else ""


def split_messages(messages) -> tuple[str, str]:
    """(system text, last user text) of a chat request."""
    system = "\n".join(_content(m) for m in messages if isinstance(m, dict) and m.get("role") == "system")
    users = [_content(m) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return system, (users[-1] if users else "")


def parse_local(messages) -> ParsedDraftRequest | None:
    if not isinstance(messages, list):
        return None
    system, user = split_messages(messages)
    if not any(k in system for k in SYSTEM_MARKERS) or THREAD_MARKER not in user:
        return None
    m = _ACCOUNT.search(user)
    account = address_of(m.group("who")) if m else ""
    blocks = _EMAIL_BLOCK.findall(user.split(THREAD_MARKER, 1)[1])
    if not account or not blocks:
        return None
    thread = [ThreadEmail(sender=_tag(b, "from"), to=_tag(b, "to"), subject=_tag(b, "subject"),
                          body=_tag(b, "body"), date=_tag(b, "date")) for b in blocks]
    instr = None
    im = re.search(r"<instructions>\s*(.*?)\s*</instructions>", user.split(THREAD_MARKER, 1)[0], re.S)
    if im:
        instr = im.group(1).strip() or None
    schema = None
    sm = _JSON_SCHEMA_IN_SYSTEM.search(system + "\n")
    if sm:
        try:
            schema = json.loads(sm.group(1))
        except ValueError:
            schema = None
    return ParsedDraftRequest(account_email=account, thread=thread, instructions=instr, schema=schema)


def parse_draft_request(messages) -> ParsedDraftRequest | None:
    """The drafting request, or None for every other call. Prefers the dataset side's parser."""
    try:
        from ..dataset.emailai_format import parse_emailai_request  # type: ignore[import-not-found]
    except ImportError:
        parse_emailai_request = None
    if parse_emailai_request is not None:
        try:
            p = parse_emailai_request(messages)
        except Exception:  # noqa: BLE001 - a parser failure must never break pass-through
            p = None
        if p is not None and getattr(p, "account_email", None):
            local = parse_local(messages)
            if local is not None:  # keep our normalised thread, theirs decides recognition
                local.account_email = address_of(p.account_email) or local.account_email
                return local
            return _normalise(p)
        return None
    return parse_local(messages)


def _normalise(p) -> ParsedDraftRequest:
    def get(o, *names):
        for n in names:
            v = o.get(n) if isinstance(o, dict) else getattr(o, n, None)
            if v:
                return str(v)
        return ""

    thread = [ThreadEmail(sender=get(e, "sender", "from_", "from"), to=get(e, "to"), subject=get(e, "subject"),
                          body=get(e, "body", "content", "text"), date=get(e, "date"))
              for e in (getattr(p, "thread", None) or [])]
    return ParsedDraftRequest(account_email=address_of(p.account_email), thread=thread,
                              instructions=getattr(p, "instructions", None) or None)


def to_instruction(req: ParsedDraftRequest) -> str:
    """The thread in our training prompt format: a reply to the newest email not sent by the user."""
    incoming = [e for e in req.thread if address_of(e.sender) != req.account_email] or req.thread
    last = incoming[-1]
    subject = last.subject.strip()
    if subject and not re.match(r"(?i)re\s*:", subject):
        subject = "Re: " + subject  # the subject the user's reply carries, as in training
    return instruction_for(subject=subject, recipient=recipient_name(last.sender), replying_to=last.body or "(no text)")


def recipient_name(sender: str) -> str:
    """The first name the training data used for a recipient (dataset.build: from the address)."""
    addr = address_of(sender)
    if not addr:
        return ""
    name = re.split(r"[._-]", addr.split("@", 1)[0])[0]
    return name.capitalize() if name.isalpha() else ""
