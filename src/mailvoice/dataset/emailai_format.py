"""Training pairs shaped like EmailAI's drafting call, and the parser that recognises that call.

Two named variants of the drafting prompt (:data:`VARIANTS`; ``prepare --emailai-format fork|upstream``):

- ``fork`` (the default): what EmailAI as shipped sends, calldatasystems/emailai
  ``apps/web/utils/ai/reply/draft-with-knowledge.ts`` and ``apps/web/utils/stringify-email.ts``
  (read at 397fdb07a6b77b72713ba6d4e1f0098c4ca6c767; identical in ``main`` 9447100 and
  ``feat/lora-adapters`` a386a0c): :data:`FORK_SYSTEM_PROMPT` (no "Return your response in JSON
  format." line), context blocks ``<userAbout>``, ``<knowledge_base>``, ``<historical_context>``
  ("Historical email context:"), ``<writing_style>``; each email ``<email>\n…\n</email>`` with
  ``<from>``, ``<replyTo>``, ``<cc>``, ``<date>``, ``<subject>``, ``<body>`` — **no** ``<to>`` and
  **no** HTML escaping (a body may hold ``</email>`` or a literal ``&amp;``).
- ``upstream``: elie222/inbox-zero's newer prompt, described below.

EmailAI (Inbox Zero) drafts a reply with ``aiDraftWithKnowledge`` in
``apps/web/utils/ai/reply/draft-with-knowledge.ts`` of https://github.com/elie222/inbox-zero
(read at commit 29d29398f294932fece87702b1ae0aa0662c788a), with its helpers
``getEmailListPrompt`` / ``getTodayForLLM`` (``apps/web/utils/ai/helpers.ts``) and
``stringifyEmail`` (``apps/web/utils/stringify-email.ts``). The model receives two messages:

- **system**: :data:`SYSTEM_PROMPT` (verbatim): short, polite, no subject, no signature,
  "Return your response in JSON format."
- **user**: optional context blocks, each ``"<Header>:\\n    \\n<tag>\\n{text}\\n</tag>\\n"``, in
  this order and joined by newlines (an absent block is an empty line):
  ``<userAbout>`` (Context about the user), ``<knowledge_base>``, ``<sender_history>``
  (older versions: ``<historical_context>``), ``<email_history>`` of ``<item>``s plus
  ``<email_history_notes>``, ``<writing_style>``, ``<calendar_availability>``,
  ``<external_tools_context>``; then::

      Here is the context of the email thread (from oldest to newest):
      <email><from>…</from>
      <to>…</to>
      <date>2024-03-05T14:02:00.000Z</date>
      <subject>…</subject>
      <body>…</body></email>
      <email>…</email>
           
      Please write a reply to the email.
      Today's date and time is: 2024-03-05T16:00:00.000Z.
      IMPORTANT: You are writing an email as me@example.com. Write the reply from their perspective.

  Fields are HTML-escaped (``he.escape``: ``& < > " ' ```), the body whitespace-normalised and
  truncated to 3000 characters plus ``...``; ``replyTo``/``to``/``cc``/``date`` appear only when set.
- **assistant** (what the model must answer, the zod ``draftSchema``): JSON ``{"reply": "…"}``.

Older upstream versions (also parsed): an ``<instructions>`` block first, ``<historical_context>``,
each email as ``<email>\\n…\\n<date>…</date>\\n</email>``, the prompt trimmed, and the last line
``IMPORTANT: The person you're writing an email for is: {to of the last email}.``

Training rows (``train_emailai.jsonl`` / ``val_emailai.jsonl``) are built from replies only (the
quoted message is the previous email of the thread, EmailAI only drafts replies). Addresses stay
scrubbed as in the rest of the dataset: the user is ``<EMAIL>`` and the other side is
``"Sam <EMAIL>"``; bodies are the scrubbed texts.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

UPSTREAM_FILE = "elie222/inbox-zero: apps/web/utils/ai/reply/draft-with-knowledge.ts"
UPSTREAM_COMMIT = "29d29398f294932fece87702b1ae0aa0662c788a"
MESSAGE_MAX_LENGTH = 3000
ADDRESS_PLACEHOLDER = "<EMAIL>"

SYSTEM_PROMPT = """You are an expert assistant that drafts email replies using knowledge base information.
Write a polite and professional email that follows up on the previous conversation.
Keep it concise and friendly.
IMPORTANT: Keep the reply short. Aim for 2 sentences at most.
Don't be pushy.
Use context from the previous emails and the provided knowledge base to make it relevant and accurate.
IMPORTANT: Do NOT simply repeat or mirror what the last email said. It doesn't add anything to the conversation to repeat back to them what they just said.
Your reply should aim to continue the conversation or provide new information based on the context or knowledge base. If you have nothing substantial to add, keep the reply minimal.
Don't mention that you're an AI.
Don't reply with a Subject. Only reply with the body of the email.

IMPORTANT: Use placeholders sparingly! Only use them where you have limited information.
Never use placeholders for the user's name. You do not need to sign off with the user's name. Do not add a signature.
Do not invent information.
Don't suggest meeting times or mention availability unless specific calendar information is provided.

Return your response in JSON format.
"""

FORK_SYSTEM_PROMPT = """You are an expert assistant that drafts email replies using knowledge base information.
Write a polite and professional email that follows up on the previous conversation.
Keep it concise and friendly.
IMPORTANT: Keep the reply short. Aim for 2 sentences at most.
Don't be pushy.
Use context from the previous emails and the provided knowledge base to make it relevant and accurate.
IMPORTANT: Do NOT simply repeat or mirror what the last email said. It doesn't add anything to the conversation to repeat back to them what they just said.
Your reply should aim to continue the conversation or provide new information based on the context or knowledge base. If you have nothing substantial to add, keep the reply minimal.
Don't mention that you're an AI.
Don't reply with a Subject. Only reply with the body of the email.

IMPORTANT: Use placeholders sparingly! Only use them where you have limited information.
Never use placeholders for the user's name. You do not need to sign off with the user's name. Do not add a signature.
Do not invent information. For example, DO NOT offer to meet someone at a specific time as you don't know what time the user is available.
"""
# What the fork's model actually receives: EmailAI calls generateObject through ollama-ai-provider
# without structured outputs, so the AI SDK (ai@4.3.6, injectJsonInstruction) appends the zod
# draftSchema (as zod-to-json-schema renders it, JSON.stringify'd) to the system text. The training
# rows and the gateway's EmailAI-trained prompt use this; a test compares it with what the real
# SDK sends (tests/test_emailai_node_client.py).
DRAFT_SCHEMA = {"type": "object", "properties": {"reply": {
    "type": "string", "description": "The complete email reply draft incorporating knowledge base information"}},
    "required": ["reply"], "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}


def sdk_json_system(system: str, schema: dict) -> str:
    """``system`` as the AI SDK's json mode sends it: the schema and its instruction appended."""
    return "\n".join([system, "", "JSON schema:", json.dumps(schema, separators=(",", ":"), ensure_ascii=False),
                      "You MUST answer with a JSON object that matches the JSON schema above."])


FORK_SYSTEM_AS_SENT = sdk_json_system(FORK_SYSTEM_PROMPT, DRAFT_SCHEMA)
FORK_FILE = "calldatasystems/emailai: apps/web/utils/ai/reply/draft-with-knowledge.ts"
FORK_COMMIT = "397fdb07a6b77b72713ba6d4e1f0098c4ca6c767"
DEFAULT_VARIANT = "fork"

THREAD_MARKER = "Here is the context of the email thread (from oldest to newest):"
REPLY_MARKER = "Please write a reply to the email."
# What ``require_system`` looks for: the part of the system text every known version and fork keeps.
DRAFT_SYSTEM_HINT = "drafts email replies"


# --------------------------------------------------------------------------------------------- upstream helpers
_HE_ESCAPE = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;"}


def escape_html(text: str) -> str:
    """``he.escape``: only ``& < > " ' ``` are escaped."""
    return re.sub(r"[&<>\"'`]", lambda m: _HE_ESCAPE[m.group(0)], text or "")


def remove_excessive_whitespace(text: str) -> str:
    """``removeExcessiveWhitespace`` of ``apps/web/utils/string.ts``."""
    text = re.sub("\u200b|\u200c|\u200d|\u200e|\u200f|\ufeff|\u3164|\u00ad|\u034f", " ", text or "")
    text = re.sub(r"\r\n|\r", "\n", text)
    text = re.sub(r"\n\s*\n\s*\n+", "\n\n", text)
    text = re.sub(r"[^\S\n]*\n[^\S\n]*", "\n", text)
    text = re.sub(r"[^\S\n]+", " ", text)
    return text.strip()


def truncate(text: str, length: int) -> str:
    return f"{text[:length]}..." if len(text) > length else text


def js_iso(value: str | datetime | None) -> str | None:
    """``Date.toISOString()``: UTC, milliseconds, ``Z``."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def stringify_email(email: dict, max_length: int = MESSAGE_MAX_LENGTH) -> str:
    """``stringifyEmail``: ``{from, replyTo?, to?, cc?, date?, subject, content}`` → tagged lines."""
    date = js_iso(email.get("date"))
    parts = [
        f"<from>{escape_html(email.get('from', ''))}</from>",
        f"<replyTo>{escape_html(email['replyTo'])}</replyTo>" if email.get("replyTo") else "",
        f"<to>{escape_html(email['to'])}</to>" if email.get("to") else "",
        f"<cc>{escape_html(email['cc'])}</cc>" if email.get("cc") else "",
        f"<date>{date}</date>" if date else "",
        f"<subject>{escape_html(email.get('subject', ''))}</subject>",
        f"<body>{escape_html(truncate(remove_excessive_whitespace(email.get('content', '')), max_length))}</body>",
    ]
    return "\n".join(p for p in parts if p)


def email_list_prompt(messages: Sequence[dict], max_length: int = MESSAGE_MAX_LENGTH) -> str:
    return "\n".join(f"<email>{stringify_email(m, max_length)}</email>" for m in messages)


def today_for_llm(when: str | datetime | None = None) -> str:
    return f"Today's date and time is: {js_iso(when) or js_iso(datetime.now(timezone.utc))}."


def _block(header: str, tag: str, text: str | None) -> str:
    return f"{header}:\n    \n<{tag}>\n{text}\n</{tag}>\n" if text else ""


def render_user_prompt(
    messages: Sequence[dict],
    *,
    account_email: str,
    about: str | None = None,
    knowledge_base: str | None = None,
    sender_history: str | None = None,
    email_history: Sequence[str] = (),
    email_history_notes: str | None = None,
    writing_style: str | None = None,
    calendar_times: Sequence[str] = (),
    external_context: str | None = None,
    today: str | datetime | None = None,
) -> str:
    """``getUserPrompt`` of draft-with-knowledge.ts, character for character."""
    precedent = ""
    if email_history:
        items = "\n".join(f"<item>\n{i}\n</item>" for i in email_history)
        precedent = (
            "Information from similar email threads that may be relevant to the current conversation to draft a reply.\n"
            f"    \n<email_history>\n{items}\n</email_history>\n\n"
            f"<email_history_notes>\n{email_history_notes or 'No notes'}\n</email_history_notes>\n"
        )
    calendar = ""
    if calendar_times:
        calendar = (
            "Calendar availability information:\n    \n<calendar_availability>\n"
            f"Suggested times: {', '.join(calendar_times)}\n</calendar_availability>\n\n"
            "IMPORTANT: Use this calendar information to suggest specific available times when responding to "
            "meeting requests. You can now offer specific times when the user is available.\n"
        )
    external = _block(
        "Additional context fetched from external tools (such as CRM systems, task managers, or other "
        "integrations) that may help draft a response", "external_tools_context", external_context)
    blocks = [
        _block("Context about the user", "userAbout", about),
        _block("Relevant knowledge base content", "knowledge_base", knowledge_base),
        _block("Historical email context with this sender", "sender_history", sender_history),
        precedent,
        _block("Writing style", "writing_style", writing_style),
        calendar,
        external,
    ]
    return (
        "\n".join(blocks)
        + f"\n\n{THREAD_MARKER}\n{email_list_prompt(messages)}\n     \n{REPLY_MARKER}\n{today_for_llm(today)}\n"
        f"IMPORTANT: You are writing an email as {account_email}. Write the reply from their perspective."
    )


def stringify_email_fork(email: dict, max_length: int = MESSAGE_MAX_LENGTH) -> str:
    """The fork's ``stringifyEmail``: no ``<to>``, nothing escaped."""
    date = js_iso(email.get("date"))
    parts = [
        f"<from>{email.get('from', '')}</from>",
        f"<replyTo>{email['replyTo']}</replyTo>" if email.get("replyTo") else "",
        f"<cc>{email['cc']}</cc>" if email.get("cc") else "",
        f"<date>{date}</date>" if date else "",
        f"<subject>{email.get('subject', '')}</subject>",
        f"<body>{truncate(remove_excessive_whitespace(email.get('content', '')), max_length)}</body>",
    ]
    return "\n".join(p for p in parts if p)


def render_fork_user_prompt(
    messages: Sequence[dict],
    *,
    account_email: str,
    about: str | None = None,
    knowledge_base: str | None = None,
    sender_history: str | None = None,
    writing_style: str | None = None,
    today: str | datetime | None = None,
    **_ignored,
) -> str:
    """The fork's ``getUserPrompt`` (draft-with-knowledge.ts), character for character; blocks
    only upstream has (email history, calendar, external tools) do not exist there."""
    emails = "\n".join(f"<email>\n{stringify_email_fork(m)}\n</email>" for m in messages)
    return (
        f"{_block('Context about the user', 'userAbout', about)}\n"
        f"{_block('Relevant knowledge base content', 'knowledge_base', knowledge_base)}\n"
        f"{_block('Historical email context', 'historical_context', sender_history)}\n"
        f"{_block('Writing style', 'writing_style', writing_style)}\n\n"
        f"{THREAD_MARKER}\n{emails}\n     \n{REPLY_MARKER}\n{today_for_llm(today)}\n"
        f"IMPORTANT: You are writing an email as {account_email}. Write the reply from their perspective."
    )


@dataclass(frozen=True)
class Variant:
    """One named version of the drafting prompt: its system text and its user-prompt renderer."""

    name: str
    system: str
    render: Callable[..., str]
    source: str


VARIANTS = {
    "fork": Variant("fork", FORK_SYSTEM_AS_SENT, render_fork_user_prompt, f"{FORK_FILE} @ {FORK_COMMIT[:8]}"),
    "upstream": Variant("upstream", SYSTEM_PROMPT, render_user_prompt, f"{UPSTREAM_FILE} @ {UPSTREAM_COMMIT[:8]}"),
}


def variant(name: str | None) -> Variant:
    """The named variant (``None`` → the fork's); an unknown name is a one-line error."""
    v = VARIANTS.get(name or DEFAULT_VARIANT)
    if v is None:
        from ..errors import MailvoiceError

        raise MailvoiceError(f"unknown EmailAI prompt format {name!r}: use {' or '.join(VARIANTS)}")
    return v


def variant_of_system(system: str) -> str:
    """Which variant a system text is (training rows carry it): upstream's asks for JSON."""
    return "upstream" if "Return your response in JSON format." in (system or "") else "fork"


def format_reply(reply: str) -> str:
    """The assistant turn: the JSON object ``draftSchema`` asks for."""
    return json.dumps({"reply": reply}, ensure_ascii=False)


# --------------------------------------------------------------------------------------------- training rows
def strip_re(subject: str) -> str:
    return re.sub(r"^\s*(?:(?:re|aw|sv|antw)\s*:\s*)+", "", subject or "", flags=re.I)


def thread_for(example, *, account_email: str = ADDRESS_PLACEHOLDER) -> list[dict]:
    """The thread EmailAI would show for an example: its quoted message as the previous email."""
    if not example.input:
        return []
    sender = f"{example.recipient} {ADDRESS_PLACEHOLDER}" if example.recipient else ADDRESS_PLACEHOLDER
    return [{"from": sender, "to": account_email, "subject": strip_re(example.subject), "content": example.input}]


def to_emailai_example(example, thread_messages: Sequence[dict], *, account_email: str = ADDRESS_PLACEHOLDER,
                       about: str | None = None, writing_style: str | None = None,
                       knowledge_base: str | None = None, sender_history: str | None = None,
                       variant_name: str = DEFAULT_VARIANT) -> dict:
    """``{id, thread_id, date, messages: [system, user, assistant]}`` in draft-with-knowledge's shape
    (the fork's unless ``variant_name="upstream"``)."""
    v = variant(variant_name)
    user = v.render(thread_messages, account_email=account_email, about=about,
                    knowledge_base=knowledge_base, sender_history=sender_history,
                    writing_style=writing_style, today=example.date)
    return {
        "id": example.id,
        "thread_id": example.thread_id,
        "date": example.date,
        "messages": [
            {"role": "system", "content": v.system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": format_reply(example.output)},
        ],
    }


def emailai_rows(examples: Iterable, **kw) -> Iterable[dict]:
    """Rows for the replies among ``examples`` (EmailAI drafts replies only)."""
    for ex in examples:
        thread = thread_for(ex, account_email=kw.get("account_email", ADDRESS_PLACEHOLDER))
        if thread:
            yield to_emailai_example(ex, thread, **kw)


# --------------------------------------------------------------------------------------------- parser
@dataclass
class ParsedDraftRequest:
    account_email: str
    thread: list[dict]  # oldest first: {from, to, subject, content, date?, cc?, replyTo?, attachments?}
    about: str | None = None
    writing_style: str | None = None
    knowledge_base: str | None = None
    sender_history: str | None = None  # <sender_history>, or the older <historical_context>
    email_history: list[str] = field(default_factory=list)
    email_history_notes: str | None = None
    calendar_availability: str | None = None
    external_context: str | None = None
    instructions: str | None = None  # older versions' <instructions>
    today: str | None = None
    system: str = ""
    schema: dict | None = None  # a JSON schema written into the system text (AI SDK json mode), if any
    kind: str = "draft"  # "draft" (draft-with-knowledge) or "nudge" (generate-nudge: a follow-up, plain text)
    variant: str = "fork"  # the prompt it came as: "fork", "upstream" (escaped fields) or "legacy"

    @property
    def latest(self) -> dict | None:
        return self.thread[-1] if self.thread else None


def _content(msg: dict) -> str:
    c = msg.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in c if isinstance(p, dict) and p.get("type", "text") == "text")
    return ""


def _tag(text: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}>\n?(.*?)\n?</{tag}>", text, re.S)
    return m.group(1) if m else None


_FIELDS = ("from", "replyTo", "to", "cc", "subject")


def _parse_email(chunk: str, *, escaped: bool = True) -> dict:
    """One ``<email>`` chunk's fields; ``escaped``: upstream's ``he.escape``d text (else taken as is,
    so a literal ``&amp;`` in the fork's unescaped body stays ``&amp;``)."""
    unescape = html.unescape if escaped else (lambda x: x)
    out: dict = {}
    body_at = chunk.find("<body>")
    head = chunk if body_at < 0 else chunk[:body_at]
    for name in _FIELDS:
        m = re.search(rf"<{name}>(.*?)</{name}>", head, re.S)
        if m:
            out[name] = unescape(m.group(1))
    m = re.search(r"<date>(.*?)</date>", head, re.S) or re.search(r"<date>(.*?)</date>\s*$", chunk, re.S)
    if m and m.group(1).strip() not in ("", "unknown"):
        out["date"] = m.group(1).strip()
    if body_at >= 0:
        end = chunk.rfind("</body>")
        out["content"] = unescape(chunk[body_at + len("<body>"): end if end > body_at else len(chunk)])
        tail = chunk[end:] if end > body_at else ""
        files = re.findall(r'<attachment filename="(.*?)"', tail)
        if files:
            out["attachments"] = [unescape(f) for f in files]
    out.setdefault("from", "")
    out.setdefault("to", "")
    out.setdefault("subject", "")
    out.setdefault("content", "")
    return out


# Emails in the thread are joined by "\n": "</email>\n<email>" and the next one's first field,
# "<from>" (upstream: on the same line; fork and older: on the next). Splitting there, not at the
# first "</email>", keeps a body that itself contains "</email>" (the fork does not escape) whole.
_EMAIL_SPLIT = re.compile(r"</email>\n<email>(?=\n?<from>)")


def _split_emails(section: str) -> tuple[list[str], bool]:
    """(email chunks, escaped?) of the thread section between the thread and reply markers."""
    section = section.strip("\n").rstrip()
    if not section.startswith("<email>") or not section.endswith("</email>"):
        return [], False
    escaped = section.startswith("<email><from>")  # upstream's current layout; it escapes its fields
    inner = section[len("<email>"): -len("</email>")]
    return [c.strip("\n") for c in _EMAIL_SPLIT.split(inner)], escaped


def _schema_in(system: str) -> dict | None:
    """The object after "JSON schema:" in the system text (the AI SDK's json mode puts it there)."""
    at = system.find("JSON schema:")
    start = system.find("{", at) if at >= 0 else -1
    if start < 0:
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(system, start)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


NUDGE_SYSTEM_HINT = "You are an expert at writing follow-up emails"
NUDGE_MARKER = "Write a brief follow-up email to politely nudge for a response."


def _thread_between(text: str, end_marker: str, system: str = ""):
    """(head, thread, tail, escaped?) around the thread; fields are taken as escaped (upstream's
    ``he.escape``) when the layout is upstream's current one or the system text is upstream's."""
    start = text.find(THREAD_MARKER)
    end = text.rfind(end_marker)
    if start < 0 or end < start:
        return None
    chunks, escaped = _split_emails(text[start + len(THREAD_MARKER): end])
    escaped = escaped or variant_of_system(system) == "upstream"
    thread = [_parse_email(c, escaped=escaped) for c in chunks]
    return (text[:start], thread, text[end + len(end_marker):], escaped) if thread else None


def _user_and_system(messages):
    if not messages:
        return None, ""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return None, ""
    text = _content(users[-1]).replace("\r\n", "\n")
    system = "\n".join(_content(m) for m in messages if isinstance(m, dict) and m.get("role") == "system")
    return text, system


def parse_emailai_request(messages: Sequence[dict], *, require_system: bool = False) -> ParsedDraftRequest | None:
    """Recognise EmailAI's draft-with-knowledge request in chat ``messages``; ``None`` if it is not one.

    Pure: no I/O. Accepts the fork's prompt, upstream's current and older versions, a system prompt
    with extra text (an SDK's JSON-schema note, returned parsed as ``schema``), and OpenAI
    content-part lists. Fields are unescaped only for upstream's escaping layout.
    ``require_system=True`` (the gateway) also asks for the drafting system text
    (:data:`DRAFT_SYSTEM_HINT`), so another call that happens to quote a thread is not taken for it."""
    text, system = _user_and_system(messages)
    if text is None or THREAD_MARKER not in text:
        return None
    if require_system and DRAFT_SYSTEM_HINT not in system:
        return None
    found = _thread_between(text, REPLY_MARKER, system)
    if found is None:
        return None
    head, thread, tail, escaped = found
    m = re.search(r"IMPORTANT: You are writing an email as (.+?)\. Write the reply from their perspective\.", tail)
    if not m:
        m = re.search(r"IMPORTANT: The person you're writing an email for is: (.*?)\.?\s*$", tail)
    account = m.group(1).strip() if m else ""
    if not account or account in ("undefined", "null"):
        account = thread[-1].get("to", "")
    today = re.search(r"Today's date and time is: (\S+?)\.?\s*$", tail, re.M)
    items_block = _tag(head, "email_history")
    items = [i for i in re.findall(r"<item>\n?(.*?)\n?</item>", items_block or "", re.S)]
    cal = _tag(head, "calendar_availability")
    legacy = "<instructions>" in head or "The person you're writing an email for is" in tail
    return ParsedDraftRequest(
        account_email=account,
        thread=thread,
        about=_tag(head, "userAbout"),
        writing_style=_tag(head, "writing_style"),
        knowledge_base=_tag(head, "knowledge_base"),
        sender_history=_tag(head, "sender_history") or _tag(head, "historical_context"),
        email_history=items,
        email_history_notes=_tag(head, "email_history_notes"),
        calendar_availability=cal.removeprefix("Suggested times: ") if cal else None,
        external_context=_tag(head, "external_tools_context"),
        instructions=_tag(head, "instructions"),
        today=today.group(1) if today else None,
        system=system,
        schema=_schema_in(system),
        variant="upstream" if escaped else ("legacy" if legacy else "fork"),
    )


def parse_nudge_request(messages: Sequence[dict]) -> ParsedDraftRequest | None:
    """Recognise EmailAI's follow-up ("nudge") call, ``aiGenerateNudge`` of
    calldatasystems/emailai ``apps/web/utils/ai/reply/generate-nudge.ts`` (also upstream's): its
    system text (:data:`NUDGE_SYSTEM_HINT`), the thread, :data:`NUDGE_MARKER`, and "The person
    you're writing an email for is: {from of the last email}" — the user, whose own email waits
    for an answer. ``None`` for every other call."""
    text, system = _user_and_system(messages)
    if text is None or NUDGE_SYSTEM_HINT not in system or NUDGE_MARKER not in text:
        return None
    found = _thread_between(text, NUDGE_MARKER, system)
    if found is None:
        return None
    _, thread, tail, escaped = found
    m = re.search(r"IMPORTANT: The person you're writing an email for is: (.*?)\.?\s*$", tail)
    today = re.search(r"Today's date and time is: (\S+?)\.?\s*$", tail, re.M)
    return ParsedDraftRequest(account_email=m.group(1).strip() if m else "", thread=thread,
                              today=today.group(1) if today else None, system=system, schema=_schema_in(system),
                              kind="nudge", variant="upstream" if escaped else "fork")


def is_emailai_request(messages: Sequence[dict]) -> bool:
    return parse_emailai_request(messages) is not None


def parse_reply(text: str) -> str | None:
    """The ``reply`` of a model answer ``{"reply": …}`` (tolerates code fences), else ``None``."""
    t = (text or "").strip()
    t = re.sub(r"^```(?:json)?\s*|\s*```$", "", t)
    try:
        obj = json.loads(t)
    except ValueError:
        m = re.search(r"\{.*\}", t, re.S)
        if not m:
            return None
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            return None
    reply = obj.get("reply") if isinstance(obj, dict) else None
    return reply if isinstance(reply, str) else None
