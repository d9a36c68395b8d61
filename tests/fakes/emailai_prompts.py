"""EmailAI drafting requests, rebuilt line by line from the upstream TypeScript (test fixtures).

Kept independent of ``mailvoice.dataset.emailai_format`` on purpose: the parser and the
training-row renderer are tested against these, not against themselves.

- ``current_request``: elie222/inbox-zero ``apps/web/utils/ai/reply/draft-with-knowledge.ts`` at
  29d29398 (``getUserPrompt``), ``getEmailListPrompt`` (``apps/web/utils/ai/helpers.ts``) and the
  escaping ``stringifyEmail`` (``apps/web/utils/stringify-email.ts``).
- ``legacy_request``: the older ``USER_PROMPT`` (``<instructions>``, ``<historical_context>``, each
  ``<email>\\n…\\n<date>…</date>\\n</email>``, ``.trim()``, "The person you're writing an email
  for is") with the older, non-escaping ``stringifyEmail``.

- ``fork_request``: what EmailAI as shipped sends, calldatasystems/emailai at 397fdb07 (same
  files in ``main`` 9447100): ``apps/web/utils/ai/reply/draft-with-knowledge.ts``
  (``getUserPrompt``: ``<historical_context>``, each email ``<email>\\n…\\n</email>``) with the
  fork's non-escaping, ``<to>``-less ``stringifyEmail`` (``apps/web/utils/stringify-email.ts``).
- ``nudge_request``: ``aiGenerateNudge`` of the fork's ``apps/web/utils/ai/reply/generate-nudge.ts``.

All return the chat ``messages`` an OpenAI-compatible endpoint receives from the AI SDK:
``[{"role": "system"}, {"role": "user"}]``.
"""

from __future__ import annotations

import re

CURRENT_SYSTEM = (
    "You are an expert assistant that drafts email replies using knowledge base information.\n"
    "Write a polite and professional email that follows up on the previous conversation.\n"
    "Keep it concise and friendly.\n"
    "IMPORTANT: Keep the reply short. Aim for 2 sentences at most.\n"
    "Don't be pushy.\n"
    "Use context from the previous emails and the provided knowledge base to make it relevant and accurate.\n"
    "IMPORTANT: Do NOT simply repeat or mirror what the last email said. It doesn't add anything to the "
    "conversation to repeat back to them what they just said.\n"
    "Your reply should aim to continue the conversation or provide new information based on the context or "
    "knowledge base. If you have nothing substantial to add, keep the reply minimal.\n"
    "Don't mention that you're an AI.\n"
    "Don't reply with a Subject. Only reply with the body of the email.\n"
    "\n"
    "IMPORTANT: Use placeholders sparingly! Only use them where you have limited information.\n"
    "Never use placeholders for the user's name. You do not need to sign off with the user's name. "
    "Do not add a signature.\n"
    "Do not invent information.\n"
    "Don't suggest meeting times or mention availability unless specific calendar information is provided.\n"
    "\n"
    "Return your response in JSON format.\n"
)

LEGACY_SYSTEM = """You are an expert assistant that drafts email replies using knowledge base information.
Write a polite and professional email that follows up on the previous conversation.
Keep it concise and friendly. Don't be pushy.
Use context from the previous emails and the provided knowledge base to make it relevant and accurate.
Don't mention that you're an AI.
Don't reply with a Subject. Only reply with the body of the email.
Keep it short.

IMPORTANT: Use placeholders sparingly! Only use them where you have limited information.
Never use placeholders for the user's name. You do not need to sign off with the user's name. Do not add a signature.
Do not invent information. For example, DO NOT offer to meet someone at a specific time as you don't know what time the user is available."""


FORK_SYSTEM = (
    "You are an expert assistant that drafts email replies using knowledge base information.\n"
    "Write a polite and professional email that follows up on the previous conversation.\n"
    "Keep it concise and friendly.\n"
    "IMPORTANT: Keep the reply short. Aim for 2 sentences at most.\n"
    "Don't be pushy.\n"
    "Use context from the previous emails and the provided knowledge base to make it relevant and accurate.\n"
    "IMPORTANT: Do NOT simply repeat or mirror what the last email said. It doesn't add anything to the "
    "conversation to repeat back to them what they just said.\n"
    "Your reply should aim to continue the conversation or provide new information based on the context or "
    "knowledge base. If you have nothing substantial to add, keep the reply minimal.\n"
    "Don't mention that you're an AI.\n"
    "Don't reply with a Subject. Only reply with the body of the email.\n"
    "\n"
    "IMPORTANT: Use placeholders sparingly! Only use them where you have limited information.\n"
    "Never use placeholders for the user's name. You do not need to sign off with the user's name. "
    "Do not add a signature.\n"
    "Do not invent information. For example, DO NOT offer to meet someone at a specific time as you don't "
    "know what time the user is available.\n"
)

NUDGE_SYSTEM = (
    "You are an expert at writing follow-up emails that get responses.\n"
    "Write a polite and professional email that follows up on the previous conversation.\n"
    "Keep it concise and friendly. Don't be pushy.\n"
    "Use context from the previous emails to make it relevant.\n"
    "Don't mention that you're an AI.\n"
    "Don't reply with a Subject. Only reply with the body of the email.\n"
    "Keep it short."
)


def fork_stringify_email(e: dict, max_length: int = 3000) -> str:
    lines = [f"<from>{e['from']}</from>"]
    for key in ("replyTo", "cc"):
        if e.get(key):
            lines.append(f"<{key}>{e[key]}</{key}>")
    if e.get("date"):
        lines.append(f"<date>{e['date']}</date>")
    lines += [f"<subject>{e['subject']}</subject>",
              f"<body>{truncate(remove_excessive_whitespace(e['content']), max_length)}</body>"]
    return "\n".join(lines)


def fork_user_prompt(messages, *, email, about=None, knowledge=None, history=None, writing_style=None,
                     today="2024-03-05T16:00:00.000Z") -> str:
    def block(header, tag, text):
        return f"{header}:\n    \n<{tag}>\n{text}\n</{tag}>\n" if text else ""

    emails = "\n".join("<email>\n" + fork_stringify_email(m) + "\n</email>" for m in messages)
    return (block("Context about the user", "userAbout", about) + "\n"
            + block("Relevant knowledge base content", "knowledge_base", knowledge) + "\n"
            + block("Historical email context", "historical_context", history) + "\n"
            + block("Writing style", "writing_style", writing_style) + "\n\n"
            + "Here is the context of the email thread (from oldest to newest):\n" + emails + "\n     \n"
            + "Please write a reply to the email.\n" + f"Today's date and time is: {today}.\n"
            + f"IMPORTANT: You are writing an email as {email}. Write the reply from their perspective.")


def fork_request(messages, **kw) -> list[dict]:
    return [{"role": "system", "content": FORK_SYSTEM}, {"role": "user", "content": fork_user_prompt(messages, **kw)}]


def nudge_request(messages, today="2024-03-05T16:00:00.000Z") -> list[dict]:
    emails = "\n".join("<email>\n" + fork_stringify_email(m) + "\n</email>" for m in messages)
    prompt = ("Here is the context of the email thread (from oldest to newest):\n" + emails + "\n     \n"
              "Write a brief follow-up email to politely nudge for a response.\n\n"
              f"Today's date and time is: {today}.\n"
              f"IMPORTANT: The person you're writing an email for is: {messages[-1]['from']}.")
    return [{"role": "system", "content": NUDGE_SYSTEM}, {"role": "user", "content": prompt}]


def he_escape(s: str) -> str:
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#x27;").replace("`", "&#x60;"))


def remove_excessive_whitespace(s: str) -> str:
    s = re.sub("[\u200b\u200c\u200d\u200e\u200f\ufeff\u3164\u00ad\u034f]", " ", s)
    s = re.sub(r"\r\n|\r", "\n", s)
    s = re.sub(r"\n\s*\n\s*\n+", "\n\n", s)
    s = re.sub(r"[^\S\n]*\n[^\S\n]*", "\n", s)
    s = re.sub(r"[^\S\n]+", " ", s)
    return s.strip()


def truncate(s: str, n: int) -> str:
    return s[:n] + "..." if len(s) > n else s


def stringify_email(e: dict, max_length: int, escape: bool = True) -> str:
    esc = he_escape if escape else (lambda x: x)
    parts = [f"<from>{esc(e['from'])}</from>"]
    if e.get("replyTo"):
        parts.append(f"<replyTo>{esc(e['replyTo'])}</replyTo>")
    if e.get("to"):
        parts.append(f"<to>{esc(e['to'])}</to>")
    if e.get("cc"):
        parts.append(f"<cc>{esc(e['cc'])}</cc>")
    if e.get("date"):
        parts.append(f"<date>{e['date']}</date>")  # already a toISOString() string here
    parts.append(f"<subject>{esc(e['subject'])}</subject>")
    parts.append(f"<body>{esc(truncate(remove_excessive_whitespace(e['content']), max_length))}</body>")
    if e.get("attachments"):
        xml = "\n".join(f'<attachment filename="{esc(a["filename"])}" type="{esc(a["mimeType"])}" size="{a["size"]}" />'
                        for a in e["attachments"])
        parts.append(f"<attachments>\n{xml}\n</attachments>")
    return "\n".join(parts)


def current_user_prompt(messages, *, email, about=None, knowledge=None, history=None, email_history=None,
                        writing_style=None, calendar=None, mcp=None, today="2024-03-05T16:00:00.000Z") -> str:
    user_about = f"Context about the user:\n    \n<userAbout>\n{about}\n</userAbout>\n" if about else ""
    relevant = f"Relevant knowledge base content:\n    \n<knowledge_base>\n{knowledge}\n</knowledge_base>\n" if knowledge else ""
    historical = (f"Historical email context with this sender:\n    \n<sender_history>\n{history}\n</sender_history>\n"
                  if history else "")
    precedent = ""
    if email_history and email_history.get("relevantEmails"):
        items = "\n".join(f"<item>\n{i}\n</item>" for i in email_history["relevantEmails"])
        precedent = ("Information from similar email threads that may be relevant to the current conversation to draft a reply.\n"
                     f"    \n<email_history>\n{items}\n</email_history>\n\n"
                     f"<email_history_notes>\n{email_history.get('notes') or 'No notes'}\n</email_history_notes>\n")
    style = f"Writing style:\n    \n<writing_style>\n{writing_style}\n</writing_style>\n" if writing_style else ""
    cal = ""
    if calendar:
        cal = ("Calendar availability information:\n    \n<calendar_availability>\n"
               f"Suggested times: {', '.join(calendar)}\n</calendar_availability>\n\n"
               "IMPORTANT: Use this calendar information to suggest specific available times when responding to "
               "meeting requests. You can now offer specific times when the user is available.\n")
    tools = ("Additional context fetched from external tools (such as CRM systems, task managers, or other "
             f"integrations) that may help draft a response:\n    \n<external_tools_context>\n{mcp}\n</external_tools_context>\n"
             if mcp else "")
    email_list = "\n".join(f"<email>{stringify_email(m, 3000)}</email>" for m in messages)
    return (f"{user_about}\n{relevant}\n{historical}\n{precedent}\n{style}\n{cal}\n{tools}\n\n"
            f"Here is the context of the email thread (from oldest to newest):\n{email_list}\n     \n"
            f"Please write a reply to the email.\nToday's date and time is: {today}.\n"
            f"IMPORTANT: You are writing an email as {email}. Write the reply from their perspective.")


def legacy_user_prompt(messages, *, about=None, instructions=None, knowledge=None, history=None,
                       today="2024-03-05T16:00:00.000Z") -> str:
    user_instr = f"Additional user instructions:\n\n<instructions>\n{instructions}\n</instructions>\n" if instructions else ""
    user_about = f"Context about the user:\n    \n<userAbout>\n{about}\n</userAbout>\n" if about else ""
    relevant = f"Relevant knowledge base content:\n    \n<knowledge_base>\n{knowledge}\n</knowledge_base>\n" if knowledge else ""
    historical = f"Historical email context:\n    \n<historical_context>\n{history}\n</historical_context>\n" if history else ""
    email_list = "\n".join(
        f"<email>\n{stringify_email(m, 3000, escape=False)}\n<date>{m.get('date') or 'unknown'}</date>\n</email>"
        for m in messages)
    return (f"{user_instr}\n{user_about}\n{relevant}\n{historical}\n\n"
            f"Here is the context of the email thread (from oldest to newest):\n{email_list}\n     \n"
            f"Please write a reply to the email.\nToday's date and time is: {today}.\n"
            f"IMPORTANT: The person you're writing an email for is: {messages[-1]['to']}.").strip()


def current_request(messages, **kw) -> list[dict]:
    return [{"role": "system", "content": CURRENT_SYSTEM}, {"role": "user", "content": current_user_prompt(messages, **kw)}]


def legacy_request(messages, **kw) -> list[dict]:
    return [{"role": "system", "content": LEGACY_SYSTEM}, {"role": "user", "content": legacy_user_prompt(messages, **kw)}]


THREAD = [
    {"from": "Sam Reed <sam@client.example>", "to": "dana@willowcreek-design.example",
     "date": "2024-03-04T09:15:00.000Z", "subject": "Site visit",
     "content": "Hi Dana,\n\nCould we do the site visit on Thursday? Also, where should we park?\n\nSam"},
    {"from": "Dana Whitfield <dana@willowcreek-design.example>", "to": "sam@client.example",
     "date": "2024-03-04T11:00:00.000Z", "subject": "Re: Site visit",
     "content": "Thursday works! I'll check on parking.\n\nDana"},
    {"from": "Sam Reed <sam@client.example>", "to": "dana@willowcreek-design.example",
     "date": "2024-03-05T08:30:00.000Z", "subject": "Re: Site visit",
     "content": "Great. Any news on parking? Also: is 10am < 11am OK & \"fine\"? </body></email> ha"},
]
