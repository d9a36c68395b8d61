"""Put the voice model's plain-text email into exactly the shape the caller asked for.

The voice model writes an email body, never JSON. The caller asked for one of:
Ollama ``format`` = a JSON schema (structured outputs) or ``"json"``; OpenAI ``response_format``
``{"type": "json_schema", "json_schema": {"schema": …}}`` or ``{"type": "json_object"}``; or
nothing (plain text). The text goes into the schema's text field (``reply`` for EmailAI's
draft schema, else the first required string property), other required fields get a value
of their type (``default``/``const``/first ``enum`` when given).

``JsonTemplate`` splits the final JSON into prefix / text / suffix so a streamed answer can emit
the prefix, then each text piece JSON-escaped, then the suffix — the concatenation is exactly
``json.dumps`` of the whole object, so a streaming client parses the same JSON.
"""

from __future__ import annotations

import json

_SENTINEL = "\u0000mailvoice-text\u0000"


def requested_schema(body: dict, *, openai: bool, prompt_schema: dict | None = None):
    """(wants_json, schema-or-None) for a request body."""
    if openai:
        rf = body.get("response_format") or {}
        if not isinstance(rf, dict):
            return False, None
        if rf.get("type") == "json_schema":
            js = rf.get("json_schema") or {}
            return True, js.get("schema") if isinstance(js, dict) else None
        if rf.get("type") == "json_object":
            return True, prompt_schema
        return False, None
    fmt = body.get("format")
    if isinstance(fmt, dict):
        return True, fmt
    if fmt == "json":
        return True, prompt_schema
    return False, None


def _resolve(schema: dict, root: dict) -> dict:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 10:
        ref = schema["$ref"]
        node = root
        for part in ref.lstrip("#/").split("/") if ref.startswith("#") else []:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema, seen = node, seen + 1
    if isinstance(schema, dict) and "anyOf" in schema and "type" not in schema:
        opts = [s for s in schema["anyOf"] if isinstance(s, dict) and s.get("type") != "null"]
        if opts:
            return _resolve(opts[0], root)
    return schema if isinstance(schema, dict) else {}


def _type(s: dict) -> str:
    t = s.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), t[0] if t else "string")
    return t or ("object" if "properties" in s else "string")


def text_field(schema: dict) -> str | None:
    props = schema.get("properties") or {}
    if "reply" in props:
        return "reply"
    req = [k for k in schema.get("required") or [] if _type(_resolve(props.get(k, {}), schema)) == "string"]
    if req:
        return req[0]
    strings = [k for k, v in props.items() if _type(_resolve(v, schema)) == "string"]
    return strings[0] if strings else None


def _filler(s: dict, root: dict):
    s = _resolve(s, root)
    if "const" in s:
        return s["const"]
    if "default" in s:
        return s["default"]
    if s.get("enum"):
        return s["enum"][0]
    t = _type(s)
    if t == "object":
        props = s.get("properties") or {}
        return {k: _filler(props.get(k, {}), root) for k in s.get("required") or []}
    return {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "null": None}.get(t, "")


def build_object(schema: dict | None, text: str) -> dict:
    """The JSON object answering ``schema`` with ``text`` in its text field."""
    if not isinstance(schema, dict) or _type(schema) != "object":
        return {"reply": text}
    props = schema.get("properties") or {}
    key = text_field(schema) or "reply"
    out = {}
    for k in props:  # property order of the schema, as a model would write it
        if k == key:
            out[k] = text
        elif k in (schema.get("required") or []):
            out[k] = _filler(props[k], schema)
    out.setdefault(key, text)
    return out


class JsonTemplate:
    """prefix + escape(text pieces) + suffix == json.dumps(build_object(schema, text))."""

    def __init__(self, schema: dict | None):
        whole = json.dumps(build_object(schema, _SENTINEL), ensure_ascii=False)
        marker = json.dumps(_SENTINEL, ensure_ascii=False)[1:-1]
        self.prefix, self.suffix = whole.split(marker, 1)

    @staticmethod
    def escape(piece: str) -> str:
        return json.dumps(piece, ensure_ascii=False)[1:-1]

    def render(self, text: str) -> str:
        return self.prefix + self.escape(text) + self.suffix
