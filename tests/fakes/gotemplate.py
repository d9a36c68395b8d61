"""A reference renderer for the subset of Go's text/template that our Ollama TEMPLATEs use.

Ollama renders a model's TEMPLATE with Go's text/template over ``.System``, ``.Prompt``,
``.Response`` and ``.Messages`` (each with ``.Role`` / ``.Content``). The test Ollama server
renders prompts with the very TEMPLATE string that ``chat.ChatFormat`` ships to Ollama, so what
it feeds llama.cpp is what a real Ollama would feed it; the tests compare that text (and its
token ids) with ``ChatFormat.render_prompt`` (training) and ``ChatFormat.render_chat``
(``mailvoice serve``). Test-only: the package renders prompts with ``chat.py`` alone.

Supported: ``{{ .Field }}``, ``{{ if .Field }}`` / ``{{ if eq|ne .Field "text" }}``…{{ else }}…{{ end }}``, ``{{ range .Messages }}…
{{ end }}`` and the ``{{-`` / ``-}}`` whitespace trims. Anything else raises ``ValueError``.
"""

from __future__ import annotations

import re

from mailvoice.chat import SYSTEM_PROMPT, ChatFormat

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def _tokens(src: str):
    pos = 0
    out: list[tuple[str, str]] = []
    for m in _ACTION.finditer(src):
        text = src[pos : m.start()]
        if m.group(1):
            text = text.rstrip()
        if out and out[-1][0] == "trim_next":
            out.pop()
            text = text.lstrip()
        out.append(("text", text))
        out.append(("action", m.group(2)))
        if m.group(3):
            out.append(("trim_next", ""))
        pos = m.end()
    text = src[pos:]
    if out and out[-1][0] == "trim_next":
        out.pop()
        text = text.lstrip()
    out.append(("text", text))
    return out


def _parse(tokens, i=0, stop=("end",)):
    """→ (nodes, index after the closing action, the closing action)."""
    nodes = []
    while i < len(tokens):
        kind, val = tokens[i]
        i += 1
        if kind == "text":
            if val:
                nodes.append(("text", val))
            continue
        head = val.split()[0] if val else ""
        if head in stop:
            return nodes, i, head
        if head == "if":
            body, i, closer = _parse(tokens, i, ("end", "else"))
            other = []
            if closer == "else":
                other, i, _ = _parse(tokens, i, ("end",))
            nodes.append(("if", _cond(val[2:].strip()), body, other))
        elif head == "range":
            body, i, _ = _parse(tokens, i, ("end",))
            nodes.append(("range", _field(val[5:].strip()), body))
        elif val.startswith("."):
            nodes.append(("field", _field(val)))
        else:
            raise ValueError(f"unsupported template action: {{{{ {val} }}}}")
    return nodes, i, None


def _cond(expr: str):
    m = re.fullmatch(r'(eq|ne)\s+(\.[A-Za-z_]+)\s+"([^"]*)"', expr)
    if m:
        return (m.group(1), _field(m.group(2)), m.group(3))
    return ("truthy", _field(expr), None)


def _test(cond, ctx) -> bool:
    op, name, arg = cond
    v = _lookup(ctx, name)
    if op == "eq":
        return v == arg
    if op == "ne":
        return v != arg
    return bool(v)


def _field(expr: str) -> str:
    if not re.fullmatch(r"\.[A-Za-z_]+", expr):
        raise ValueError(f"unsupported template expression: {expr}")
    return expr[1:]


def _lookup(ctx: dict, name: str):
    return ctx.get(name, ctx.get(name.lower(), ""))


def _render(nodes, ctx: dict, out: list[str]) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "field":
            v = _lookup(ctx, node[1])
            out.append("" if v is None else str(v))
        elif kind == "if":
            _render(node[2] if _test(node[1], ctx) else node[3], ctx, out)
        elif kind == "range":
            for item in _lookup(ctx, node[1]) or []:
                _render(node[2], {k[:1].upper() + k[1:]: v for k, v in item.items()}, out)


def collate(messages: list[dict]) -> tuple[str, list[dict]]:
    """Ollama's ``template.collate``: system texts joined into ``.System`` (they also stay in
    ``.Messages``); consecutive messages of one role merged with a blank line."""
    system, out = [], []
    for m in messages:
        m = {"role": m.get("role", "user"), "content": m.get("content", "")}
        if m["role"] == "system":
            system.append(m["content"])
        if out and out[-1]["role"] == m["role"] and m["role"] != "tool":
            out[-1]["content"] += "\n\n" + m["content"]
        else:
            out.append(m)
    return "\n\n".join(system), out


def render(template: str, messages: list[dict]) -> str:
    """Render ``template`` for a chat the way Ollama's ``Template.Execute`` does."""
    system, collated = collate(messages)
    nodes, _, _ = _parse(_tokens(template))
    out: list[str] = []
    _render(nodes, {"System": system, "Messages": collated, "Prompt": "", "Response": ""}, out)
    return "".join(out)


def generate_messages(prompt: str, *, system: str | None, model_system: str = "") -> list[dict]:
    """What Ollama's /api/generate feeds the template: the request's system (or the model's
    SYSTEM) as a system message, then the prompt as the user message."""
    msgs = []
    if system or model_system:
        msgs.append({"role": "system", "content": system or model_system})
    msgs.append({"role": "user", "content": prompt})
    return msgs


def chat_messages(messages: list[dict], *, model_system: str = "") -> list[dict]:
    """What Ollama's /api/chat feeds the template: the model's SYSTEM first unless the request
    brings its own system message."""
    if model_system and not any(m.get("role") == "system" for m in messages):
        return [{"role": "system", "content": model_system}, *messages]
    return list(messages)


BOS = {"llama3": "<|begin_of_text|>"}  # added by the runtime's tokenizer, not by the TEMPLATE


def ollama_prompt(template: str, fmt: ChatFormat, user: str, system: str = SYSTEM_PROMPT) -> str:
    """What Ollama's /api/generate renders for ``user`` with this TEMPLATE and SYSTEM."""
    return BOS.get(fmt.name, "") + render(template, generate_messages(user, system=None, model_system=system))


def renders_like_training(template: str, fmt: ChatFormat) -> bool:
    probe = "Write an email to Sam.\nSubject: probe"
    return ollama_prompt(template, fmt, probe) == fmt.render_prompt(probe)
