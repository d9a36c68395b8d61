"""EmailAI's drafting call, gateway side: who it is for, and our training prompt for it.

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
from ..dataset.emailai_format import ParsedDraftRequest, parse_emailai_request, strip_re
from ..dataset.pii import protected_names, scrub, scrub_subject
from ..rag.index import query_text

def draft_request(messages) -> ParsedDraftRequest | None:
    """EmailAI's drafting call with a routable account address, or ``None`` for every other call."""
    try:
        p = parse_emailai_request(messages, require_system=True)
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


def to_instruction(req: ParsedDraftRequest, retrieve: Callable[[str], list[str]] | None = None) -> str:
    """The thread in our training prompt format: a reply to the newest email not sent by the user,
    with the user's past emails ``retrieve(query)`` finds when the adapter was trained with them."""
    subject, recipient, body, _ = answered(req)
    examples = retrieve(query_text(subject=subject, replying_to=body)) if retrieve else ()
    return instruction_for(subject=subject, recipient=recipient, replying_to=body or "(no text)", examples=examples)


def to_emailai_messages(req: ParsedDraftRequest) -> list[dict]:
    """For an adapter trained on EmailAI's own prompt (``train_emailai.jsonl``): that prompt, built
    as ``emailai_format.thread_for`` built the training rows — the email answered alone, scrubbed,
    addresses as ``<EMAIL>`` — never the raw thread EmailAI sent."""
    from ..dataset.emailai_format import ADDRESS_PLACEHOLDER, SYSTEM_PROMPT, render_user_prompt

    subject, recipient, body, last = answered(req)
    sender = f"{recipient} {ADDRESS_PLACEHOLDER}" if recipient else ADDRESS_PLACEHOLDER
    thread = [{"from": sender, "to": ADDRESS_PLACEHOLDER, "subject": strip_re(subject),
               "content": body or "(no text)"}]
    user = render_user_prompt(thread, account_email=ADDRESS_PLACEHOLDER, today=req.today or last.get("date"))
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
