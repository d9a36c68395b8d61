"""``mailvoice mcp``: an MCP server (stdio) exposing ``draft_email`` to agent clients.

The tool drafts in one user's voice with ``gateway.compose.write_draft``. The server is bound
to the users given at start (``--user-id``, repeatable): a client can only draft for those, so
one agent session never reaches another person's model. Nothing of the notes or the draft is
logged.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MailvoiceError


def build_server(user_ids: list[str], *, root=None, upstream: str | None = None, api: str = "ollama",
                 token: str | None = None, max_candidates: int = 8):
    from mcp.server.mcpserver import MCPServer

    from .compose import StyleScorer, write_draft

    allowed = list(dict.fromkeys(user_ids))
    if not allowed:
        raise MailvoiceError("mailvoice mcp needs at least one --user-id")
    scorer = StyleScorer(root)
    server = MCPServer(name="mailvoice", instructions="Draft emails in a user's own voice with their fine-tuned model.")

    @server.tool(description="Draft an email in the user's own voice from short notes. Optionally the text of the "
                             "email being answered (reply_to_text) and its subject. Returns the email body only.")
    def draft_email(notes: str, user_id: str = "", reply_to_text: str = "", subject: str = "", recipient: str = "",
                    candidates: int = 1) -> str:
        uid = user_id or allowed[0]
        if uid not in allowed:
            raise ValueError(f"this server drafts only for: {', '.join(allowed)}")
        n = max(1, min(int(candidates), max_candidates))
        if reply_to_text.strip():
            return _draft_reply(uid, notes, reply_to_text, subject, recipient, n, root, upstream, api, token, scorer)
        return write_draft(notes, uid, root=root, candidates=n, upstream=upstream, api=api, token=token, scorer=scorer,
                           subject=subject, recipient=recipient).text

    return server


def _draft_reply(uid, notes, text, subject, recipient, n, root, upstream, api, token, scorer) -> str:
    import tempfile
    from email.message import EmailMessage

    from .compose import write_draft

    msg = EmailMessage()
    msg["From"] = recipient or "sender@example.invalid"
    msg["Subject"] = subject or ""
    msg.set_content(text)
    with tempfile.TemporaryDirectory(prefix="mailvoice-mcp-") as d:
        p = Path(d) / "reply_to.eml"
        p.write_bytes(msg.as_bytes())
        return write_draft(notes, uid, root=root, reply_to=p, candidates=n, upstream=upstream, api=api,
                           token=token, scorer=scorer).text


def run(user_ids: list[str], **kw) -> None:
    from .emailai_calls import warm_scrubber

    server = build_server(user_ids, **kw)
    warm_scrubber()  # reply_to_text is PII-scrubbed; build the scrubber before the first call
    server.run("stdio")
