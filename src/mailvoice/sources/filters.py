"""Keep only mail the user wrote: From is theirs (or Takeout says Sent), and no machine wrote it.

Runs on the parsed ``EmailMessage`` before a record is built, because most signals
(``Auto-Submitted``, ``Precedence``, ``List-Id``, MIME types of inner parts) are headers the
record does not carry. The first failing check names the drop reason, in this order:

``chat``            a Takeout label ``Chat`` (Hangouts/Chat transcripts)
``not_from_user``   From is none of the user's addresses and there is no ``Sent`` label
``no_sent_label``   Gmail labels (``X-Gmail-Labels``, Takeout) are present but ``Sent`` is not
                    among them: in an "All mail" export the user's own mail is what Gmail
                    labelled Sent, and a From with the user's address on an ``Inbox`` message is
                    forged (spoofed spam) or a draft, never something the user sent
``delivery_report`` multipart/report, a message/delivery-status part, From MAILER-DAEMON/postmaster
``auto_submitted``  ``Auto-Submitted`` present with a value other than ``no`` (RFC 3834)
``calendar``        an invitation: a text/calendar part with a ``method`` (REQUEST, REPLY, …)
                    or one that is not an attachment; an attached .ics file is fine
``bulk``            ``Precedence: bulk|list|junk``, or a ``List-Id`` / ``List-Unsubscribe`` header
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from email.message import EmailMessage

from mailvoice.errors import MailvoiceError
from mailvoice.sources.parse import (
    BadMessage,
    RawHeaders,
    build_record,
    from_address,
    gmail_labels,
    merge_labels,
    parse_bytes,
)
from mailvoice.sources.record import MailRecord, SourceStats

DROP_REASONS = (
    "not_from_user",
    "no_sent_label",
    "auto_submitted",
    "bulk",
    "calendar",
    "delivery_report",
    "chat",
    "duplicate",
    "malformed",
    "no_body",
)

_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})


def normalise_emails(emails: Iterable[str]) -> frozenset[str]:
    """The user's addresses, lower-cased; raises if none is given."""
    out = frozenset(e.strip().lower() for e in emails if e and e.strip())
    if not out:
        raise MailvoiceError("no user email address given: cannot tell which mail is the user's")
    return out


def _has_label(labels: Sequence[str], want: str) -> bool:
    return any(label.strip().lower() == want for label in labels)


def _first_word(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _part_types(msg: EmailMessage) -> list[tuple[EmailMessage, str]]:
    """Every part with its content type, parsed once (``walk`` never decodes payloads)."""
    if not msg.is_multipart():
        return [(msg, msg.get_content_type())]
    return [(p, p.get_content_type()) for p in msg.walk()]


_REPORT_PARTS = frozenset({"message/delivery-status", "message/disposition-notification"})
_CALENDAR_PARTS = frozenset({"text/calendar", "application/ics"})


def _is_delivery_report(parts: list[tuple[EmailMessage, str]], from_addr: str) -> bool:
    if from_addr.split("@", 1)[0] in _DAEMONS:
        return True
    return parts[0][1] == "multipart/report" or any(t in _REPORT_PARTS for _, t in parts)


def _is_invitation(parts: list[tuple[EmailMessage, str]]) -> bool:
    return any(t in _CALENDAR_PARTS and (p.get_param("method") or not p.is_attachment()) for p, t in parts)


def drop_reason(
    msg: EmailMessage,
    headers: RawHeaders,
    *,
    from_addr: str,
    labels: Sequence[str],
    user_emails: frozenset[str],
    gmail: Sequence[str] = (),
) -> str | None:
    """Why this message is not the user's own authored mail, or None to keep it. ``gmail`` are
    the message's own ``X-Gmail-Labels`` (``labels`` holds them merged with the source's)."""
    if _has_label(labels, "chat"):
        return "chat"
    sent = _has_label(labels, "sent")
    if from_addr not in user_emails and not sent:
        return "not_from_user"
    if gmail and not sent:
        return "no_sent_label"
    parts = _part_types(msg)
    if _is_delivery_report(parts, from_addr):
        return "delivery_report"
    auto = _first_word(headers.get("auto-submitted"))
    if "auto-submitted" in headers and auto != "no":
        return "auto_submitted"
    if _is_invitation(parts):
        return "calendar"
    if _first_word(headers.get("precedence")) in _BULK_PRECEDENCE:
        return "bulk"
    if "list-id" in headers or "list-unsubscribe" in headers:
        return "bulk"
    return None


def process_raw(
    raw: bytes,
    *,
    source: str,
    labels: Sequence[str],
    user_emails: frozenset[str],
    stats: SourceStats,
) -> MailRecord | None:
    """Parse, filter and build one record; every failure is counted, none is raised."""
    try:
        msg = parse_bytes(raw)
        h = RawHeaders(msg)
        gmail = gmail_labels(h)
        all_labels = merge_labels(labels, gmail)
        sender = from_address(h)
        from_addr = sender[0]
        reason = drop_reason(msg, h, from_addr=from_addr, labels=all_labels, user_emails=user_emails, gmail=gmail)
        if reason is not None:
            stats.drop(reason)
            return None
        rec = build_record(msg, raw, source=source, labels=labels, headers=h, sender=sender, stats=stats)
    except BadMessage as e:
        stats.error(e.reason)
        stats.drop("malformed")
        return None
    except Exception as e:  # noqa: BLE001 - real mail is endlessly odd: one message must never stop an ingest
        stats.error(f"unexpected_{type(e).__name__}")
        stats.drop("malformed")
        return None
    if not (rec.text and rec.text.strip()) and not (rec.html and rec.html.strip()):
        stats.drop("no_body")
        return None
    return rec
