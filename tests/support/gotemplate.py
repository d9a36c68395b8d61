"""A minimal Go text/template evaluator for the subset Ollama TEMPLATEs use here.

Supports ``{{ .Field }}``, ``{{ if .X }}…{{ else }}…{{ end }}``, ``{{ range .Messages }}…{{ end }}``
and the ``{{-``/``-}}`` whitespace trim markers, with Go's semantics for those (trim all
adjacent whitespace). Enough to render our TEMPLATE in tests and compare it with training.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def _lex(src: str):
    out, pos = [], 0
    for m in _TOKEN.finditer(src):
        text = src[pos:m.start()]
        if m.group(1):
            text = text.rstrip()
        out.append(("text", text))
        out.append(("action", m.group(2), bool(m.group(3))))
        pos = m.end()
    out.append(("text", src[pos:]))
    # apply right-trim markers to the following text
    for i, t in enumerate(out):
        if t[0] == "action" and t[2] and i + 1 < len(out):
            out[i + 1] = ("text", out[i + 1][1].lstrip())
    return [t if t[0] == "text" else ("action", t[1]) for t in out]


def _parse(tokens, i=0, stop=("end",)):
    nodes = []
    while i < len(tokens):
        kind, val = tokens[i]
        if kind == "text":
            nodes.append(("text", val))
            i += 1
            continue
        word = val.split()[0]
        if word in stop:
            return nodes, i
        if word in ("if", "range"):
            body, i = _parse(tokens, i + 1, stop=("end", "else"))
            other = []
            if tokens[i][1].split()[0] == "else":
                other, i = _parse(tokens, i + 1, stop=("end",))
            nodes.append((word, val.split()[1], body, other))
            i += 1
            continue
        nodes.append(("field", val))
        i += 1
    return nodes, i


def _get(ctx, path):
    cur = ctx
    for part in path.lstrip(".").split("."):
        if not part:
            continue
        cur = cur.get(part) if isinstance(cur, dict) else getattr(cur, part, None)
    return cur


def _run(nodes, ctx):
    out = []
    for n in nodes:
        if n[0] == "text":
            out.append(n[1])
        elif n[0] == "field":
            v = _get(ctx, n[1])
            out.append("" if v is None else str(v))
        elif n[0] == "if":
            out.append(_run(n[2] if _get(ctx, n[1]) else n[3], ctx))
        elif n[0] == "range":
            items = _get(ctx, n[1]) or []
            out.append("".join(_run(n[2], item) for item in items) if items else _run(n[3], ctx))
    return "".join(out)


def render(template: str, **ctx) -> str:
    nodes, _ = _parse(_lex(template))
    return _run(nodes, ctx)
