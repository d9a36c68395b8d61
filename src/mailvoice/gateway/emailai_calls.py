"""EmailAI's calls that write as the user, gateway side: who they are for, and our training prompt.

Two calls are recognised, each by its own structure: the drafting call (draft-with-knowledge)
and the follow-up ("nudge", ``generate-nudge.ts``: ``dataset.emailai_format.parse_nudge_request``),
which writes a new email as the user with ``generateText``. Other calls that write as the user —
rule action arguments (``ai-choose-args.ts``: a tool call) and compose autocomplete — carry no
address of the user (the fork's ``stringifyEmail`` has no ``<to>``, its system texts only the
``about`` text), so nobody can be routed and they stay on the base model with every classify or
extract call.

Recognition is the dataset side's one parser,
:func:`mailvoice.dataset.emailai_format.parse_emailai_request` (the thread as
``{from, to, subject, content, date}`` dicts, the account, the context blocks, a JSON schema
written into the system text), called with ``require_system=True``: the gateway takes a request
for EmailAI's drafting call only when its system text is the drafting one too. What is left here
is what only the gateway needs:

- :func:`draft_request`: the parsed request with ``account_email`` reduced to a bare, lower-cased
  address (the routing key), or ``None`` for every other call; it never raises, so a surprise in
  a request can only mean pass-through.
- :func:`to_instruction`: the thread → our training prompt (``chat.instruction_for``), a reply to
  the newest email not sent by the user, its text **PII-scrubbed the way the training data was**
  (``dataset.pii.scrub``, the user's own names protected as ``dataset.build`` does), so the
  voice model sees the distribution it was trained on and never a correspondent's raw address,
  number or key.

``warm_scrubber`` builds the scrubber's engines (Presidio, detect-secrets, the suffix list: about
a second or more, once per process); the gateway calls it at startup so no request pays for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from email.utils import parseaddr

from ..chat import address_of, instruction_for, recipient_name, reply_subject
from ..dataset.emailai_format import ParsedDraftRequest, parse_emailai_request, parse_nudge_request, strip_re
from ..dataset.pii import protected_names, scrub, scrub_subject
from ..rag.index import query_text

def draft_request(messages) -> ParsedDraftRequest | None:
    """EmailAI's drafting or nudge call (``.kind``) with a routable account address, or ``None``
    for every other call."""
    try:
        p = parse_emailai_request(messages, require_system=True) or parse_nudge_request(messages)
    except Exception:  # noqa: BLE001 - a parser surprise must never break pass-through
        return None
    if p is None:
        return None
    account = address_of(p.account_email)
    if not account:  # "<EMAIL>", "undefined", a name only: nobody to route to
        return None
    p.account_email = account
    return p


def scrub_text(text: str, protect: Sequence[str] = ()) -> str:
    """``text`` with PII and secrets replaced by the training data's placeholders."""
    return scrub(text, protect=protect).text if text else text


def warm_scrubber() -> None:
    """Build the scrubber's engines now (cached per process), not on the first request."""
    scrub_text("warm-up: call +1 415 555 0134 or write to someone@example.org, key AKIAABCDEFGHIJKLMNOP")


def answered(req: ParsedDraftRequest) -> tuple[str, str, str, dict]:
    """(subject, recipient, body, email) of the newest email not sent by the user, as training saw it.

    As in training (``dataset.build``): the text answered is scrubbed with the user's names
    protected; the recipient's first name comes from their address. The subject is scrubbed too
    (``pii.scrub_subject``, as training does)."""
    account = req.account_email
    incoming = [e for e in req.thread if address_of(e.get("from", "")) != account] or req.thread
    last = incoming[-1]
    own = [parseaddr(e.get("from", ""))[0] for e in req.thread if address_of(e.get("from", "")) == account]
    protect = protected_names(own)
    subject = reply_subject(scrub_subject((last.get("subject") or "").strip(), protect=protect).text)
    body = scrub_text((last.get("content") or "").strip(), protect)
    return subject, recipient_name(last.get("from", "")), body, last


NUDGE_NOTES = "A short, polite follow-up to my last email, which has had no answer yet: nudge for a response."


def nudge_instruction(req: ParsedDraftRequest, retrieve: Callable[[str], list[str]] | None = None) -> str:
    """A nudge in our training prompt format: a new email to the other side of the thread, with
    the thread's subject (scrubbed) and what it is for as notes — no thread text is needed."""
    account = req.account_email
    others = [e for e in req.thread if address_of(e.get("from", "")) != account]
    last = req.thread[-1]
    recipient = recipient_name(others[-1].get("from", "") if others else last.get("to", ""))
    own = [parseaddr(e.get("from", ""))[0] for e in req.thread if address_of(e.get("from", "")) == account]
    subject = reply_subject(scrub_subject((last.get("subject") or "").strip(), protect=protected_names(own)).text)
    examples = retrieve(query_text(subject=subject, replying_to="")) if retrieve else ()
    return instruction_for(subject=subject, recipient=recipient, notes=NUDGE_NOTES, examples=examples)


def to_instruction(req: ParsedDraftRequest, retrieve: Callable[[str], list[str]] | None = None) -> str:
    """The thread in our training prompt format: a reply to the newest email not sent by the user,
    with the user's past emails ``retrieve(query)`` finds when the adapter was trained with them
    (a nudge: :func:`nudge_instruction`)."""
    if req.kind == "nudge":
        return nudge_instruction(req, retrieve)
    subject, recipient, body, _ = answered(req)
    examples = retrieve(query_text(subject=subject, replying_to=body)) if retrieve else ()
    return instruction_for(subject=subject, recipient=recipient, replying_to=body or "(no text)", examples=examples)


def to_emailai_messages(req: ParsedDraftRequest, variant_name: str = "fork") -> list[dict]:
    """For an adapter trained on EmailAI's own prompt (``train_emailai.jsonl``, in ``variant_name``):
    that prompt, built as ``emailai_format.thread_for`` built the training rows — the email
    answered alone, scrubbed, addresses as ``<EMAIL>`` — never the raw thread EmailAI sent. (Such an
    adapter only ever learned replies: a nudge is asked the same way, to the last email.)"""
    from ..dataset.emailai_format import ADDRESS_PLACEHOLDER, variant

    subject, recipient, body, last = answered(req)
    sender = f"{recipient} {ADDRESS_PLACEHOLDER}" if recipient else ADDRESS_PLACEHOLDER
    thread = [{"from": sender, "to": ADDRESS_PLACEHOLDER, "subject": strip_re(subject),
               "content": body or "(no text)"}]
    v = variant(variant_name)
    user = v.render(thread, account_email=ADDRESS_PLACEHOLDER, today=req.today or last.get("date"))
    return [{"role": "system", "content": v.system}, {"role": "user", "content": user}]
