"""The one definition of the prompt: system text, chat layout, end-of-turn token, stop words.

Training, evaluation and serving (the Ollama TEMPLATE) all render conversations through the
``ChatFormat`` here, so the tokens the model saw when it learned are the tokens it sees when it
serves. Each format mirrors its base model's own chat template (tests compare token ids with
``tokenizer.apply_chat_template``); Llama 3.1's HF template always adds a "Cutting Knowledge
Date" system block, which we render too, everywhere, instead of dropping it in one place only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SYSTEM_PROMPT = (
    "You write emails in the voice of the person you work for: their greeting, tone, length, "
    "phrasing and sign-off. Reply with the email body only, no subject line."
)


_ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def address_of(text: str) -> str:
    """The first email address in ``text`` ("Sam Lee <sam.lee@…>"), lower-cased; "" for none."""
    m = _ADDRESS.search(text or "")
    return m.group(0).lower() if m else ""


def recipient_name(address: str) -> str:
    """The first name a prompt gives the person written to, from their address
    ("sam.lee@acme.example" or "Sam Lee <sam.lee@…>" → "Sam"); training and serving alike."""
    addr = address_of(address)
    name = re.split(r"[._-]", addr.split("@", 1)[0])[0] if addr else ""
    return name.capitalize() if name.isalpha() else ""


def reply_subject(subject: str) -> str:
    """The subject the user's reply carries ("Re: …"), as the training replies' subjects do."""
    subject = subject or ""
    return "Re: " + subject if subject and not re.match(r"(?i)re\s*:", subject) else subject


def task_line(*, subject: str = "", recipient: str = "", is_reply: bool = False, notes: str | None = None) -> str:
    """What to write, without the thread: the alpaca ``instruction``."""
    who = f" to {recipient}" if recipient else ""
    parts = [f"Write a reply{who}." if is_reply else f"Write an email{who}."]
    if subject:
        parts.append(f"Subject: {subject}")
    if notes:
        parts.append(f"Notes: {notes}")
    return "\n".join(parts)


EXAMPLES_HEADER = "Emails you wrote before on similar topics (your voice; do not copy them):"
EXAMPLE_RULE = "---"
REPLYING_TO = "\n\nThe email you are replying to:\n"


def examples_block(examples) -> str:
    """Retrieved past emails of the user (``rag``), as the prompt shows them; '' for none."""
    texts = [e.strip() for e in examples or () if e and e.strip()]
    if not texts:
        return ""
    body = f"\n{EXAMPLE_RULE}\n".join(texts)
    return f"{EXAMPLES_HEADER}\n{EXAMPLE_RULE}\n{body}\n{EXAMPLE_RULE}"


def instruction_for(
    *,
    subject: str = "",
    recipient: str = "",
    replying_to: str | None = None,
    notes: str | None = None,
    examples=(),
) -> str:
    """The user turn of a training pair, and of every prompt at serving time.

    ``examples`` are past emails retrieved for this one (``mailvoice.rag``); they sit between the
    task and the email answered, the same way in training, evaluation and serving."""
    text = task_line(subject=subject, recipient=recipient, is_reply=bool(replying_to), notes=notes)
    block = examples_block(examples)
    if block:
        text += "\n\n" + block
    if replying_to:
        text += f"{REPLYING_TO}{replying_to.strip()}"
    return text


def strip_examples(user_turn: str) -> str:
    """The same user turn without its retrieved examples (evaluate's with/without comparison)."""
    start = user_turn.find("\n\n" + EXAMPLES_HEADER + "\n")
    if start < 0:
        return user_turn
    end = user_turn.find(f"\n{EXAMPLE_RULE}{REPLYING_TO}", start)
    return user_turn[:start] if end < 0 else user_turn[:start] + user_turn[end + 1 + len(EXAMPLE_RULE):]


def with_examples(user_turn: str, examples) -> str:
    """``user_turn`` with ``examples`` in the place ``instruction_for`` gives them (replacing any)."""
    text = strip_examples(user_turn)
    block = examples_block(examples)
    if not block:
        return text
    at = text.find(REPLYING_TO)
    return text + "\n\n" + block if at < 0 else text[:at] + "\n\n" + block + text[at:]


def prompt_fields(user_turn: str) -> dict:
    """``subject``, ``notes`` and ``replying_to`` back out of a user turn (its retrieval query)."""
    text = strip_examples(user_turn)
    head, _, replying = text.partition(REPLYING_TO)
    get = {k: "" for k in ("subject", "notes")}
    for line in head.splitlines():
        for k in get:
            if line.startswith(f"{k.capitalize()}: ") and not get[k]:
                get[k] = line[len(k) + 2:].strip()
    return {**get, "replying_to": replying.strip()}


def has_examples(user_turn: str) -> bool:
    return ("\n\n" + EXAMPLES_HEADER + "\n") in user_turn


@dataclass(frozen=True)
class ChatFormat:
    name: str
    end_token: str  # ends the assistant turn; a trained target, never masked
    stop: tuple[str, ...]
    ollama_template: str  # Go template for Ollama's TEMPLATE, rendering the same text

    def render_prompt(self, user: str, system: str = SYSTEM_PROMPT) -> str:
        """Everything before the reply, ending with the assistant header (generation prompt)."""
        if self.name == "chatml":
            return (
                f"<|im_start|>system\n{system}<|im_end|>\n"
                f"<|im_start|>user\n{user}<|im_end|>\n"
                f"<|im_start|>assistant\n"
            )
        if self.name == "llama3":
            # Llama 3.1's template trims every message (`| trim`); so do we.
            system, user = system.strip(), user.strip()
            return (
                "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                f"Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n{system}<|eot_id|>"
                f"<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n"
            )
        raise ValueError(self.name)

    def render_chat(self, messages: list[dict], system: str = SYSTEM_PROMPT) -> str:
        """A whole chat up to the assistant's turn, as Ollama renders ``ollama_template`` for
        /api/chat (``mailvoice serve`` answers that kind of call): the chat's system messages,
        else ``system``, as the system turn; consecutive turns of one role merged with a blank
        line (Ollama's ``template.collate``); BOS as the runtime's tokenizer adds it. Unlike
        ``render_prompt``, nothing is trimmed: Ollama's TEMPLATE does not trim. Tests render
        ``ollama_template`` with a Go-template reference and compare."""
        turns: list[dict] = []
        for m in messages:
            role, content = m.get("role", "user"), m.get("content")
            content = "" if content is None else str(content)
            if turns and turns[-1]["role"] == role and role != "tool":
                turns[-1]["content"] += "\n\n" + content
            else:
                turns.append({"role": role, "content": content})
        given = [t["content"] for t in turns if t["role"] == "system"]
        system = "\n\n".join(given) if given else system
        turns = [t for t in turns if t["role"] != "system"]
        if self.name == "chatml":
            head = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
            body = "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in turns)
            return head + body + "<|im_start|>assistant\n"
        if self.name == "llama3":
            head = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                    f"Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n{system}<|eot_id|>")
            body = "".join(f"<|start_header_id|>{t['role']}<|end_header_id|>\n\n{t['content']}<|eot_id|>" for t in turns)
            return head + body + "<|start_header_id|>assistant<|end_header_id|>\n\n"
        raise ValueError(self.name)

    def render_reply(self, reply: str) -> str:
        if self.name == "llama3":
            reply = reply.strip()
        return f"{reply}{self.end_token}"


CHATML = ChatFormat(
    name="chatml",
    end_token="<|im_end|>",
    stop=("<|im_end|>", "<|im_start|>"),
    # Ollama also keeps system messages in .Messages (template.collate), so the range skips them.
    ollama_template=(
        "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        '{{- range .Messages }}{{- if ne .Role "system" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}{{ end }}'
        "<|im_start|>assistant\n"
    ),
)

LLAMA3 = ChatFormat(
    name="llama3",
    end_token="<|eot_id|>",
    stop=("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"),
    ollama_template=(
        "<|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
        "{{ if .System }}{{ .System }}{{ end }}<|eot_id|>"
        '{{- range .Messages }}{{- if ne .Role "system" }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}{{ end }}'
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
)

FORMATS = {"chatml": CHATML, "llama3": LLAMA3}


def format_for(tokenizer) -> ChatFormat:
    """Pick the layout the base model's own template uses, from its special tokens."""
    vocab = tokenizer.get_vocab()
    if "<|eot_id|>" in vocab and "<|start_header_id|>" in vocab:
        return LLAMA3
    if "<|im_start|>" in vocab and "<|im_end|>" in vocab:
        return CHATML
    raise ValueError("unsupported chat template: mailvoice knows ChatML and Llama 3 layouts")


def pad_token_for(tokenizer) -> str:
    """A pad that is not the end token: pad == eos makes collators mask the end, so models never stop."""
    fmt = format_for(tokenizer)
    for cand in ("<|finetune_right_pad_id|>", "<|endoftext|>", "<|reserved_special_token_0|>"):
        if cand in tokenizer.get_vocab() and cand != fmt.end_token:
            return cand
    raise ValueError("no spare special token to use as pad")
