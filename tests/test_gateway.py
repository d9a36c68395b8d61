"""``mailvoice gateway`` against a recording upstream stub (no model needed, seconds).

EmailAI-shaped drafting requests are built here from the structure of EmailAI's prompt code
(``draft-with-knowledge.ts``: the fork's/older upstream form and the newer one, sent as the AI
SDK's Ollama provider sends them — ``/api/chat`` with ``format`` = JSON schema, or ``"json"``
with the schema in the system text — or as the OpenAI-compatible provider does).
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from fakes import emailai_prompts as ep  # the fork's calls, rebuilt from its TypeScript
from mailvoice.chat import SYSTEM_PROMPT, instruction_for
from mailvoice.gateway import GatewayConfig, UserDirectory, create_app
from mailvoice.gateway.emailai_calls import draft_request, to_instruction
from mailvoice.gateway.shape import JsonTemplate, build_object

DRAFT_SCHEMA = {"type": "object", "properties": {"reply": {"type": "string", "description":
                "The complete email reply draft incorporating knowledge base information"}},
                "required": ["reply"], "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}
SYSTEM_OLD = ("You are an expert assistant that drafts email replies using knowledge base information.\n"
              "Write a polite and professional email that follows up on the previous conversation.\n"
              "Keep it concise and friendly. Don't be pushy.\nDon't reply with a Subject. Only reply with the body of the email.")
SYSTEM_NEW = SYSTEM_OLD + "\n\nReturn your response in JSON format.\n"
SECRET_BODY = "The budget for Project Zanzibar is 41,000 and the code word is periwinkle."


# ------------------------------------------------------------------------------- EmailAI fixtures
def stringify_email(e: dict, escape: bool = True) -> str:
    """EmailAI's stringifyEmail, one tag per line: escaped fields with upstream's JSON-asking system
    text, as is with the older one (the fork's and older upstream's stringifyEmail escape nothing)."""
    esc = html.escape if escape else (lambda x: x)
    parts = [f"<from>{esc(e['from'])}</from>"]
    if e.get("to"):
        parts.append(f"<to>{esc(e['to'])}</to>")
    parts.append(f"<subject>{esc(e['subject'])}</subject>")
    parts.append(f"<body>{esc(e['body'])}</body>")
    return "\n".join(parts)


def draft_prompt(thread: list[dict], account: str, *, newer: bool = False, about: str | None = None) -> str:
    about_block = f"Context about the user:\n    \n<userAbout>\n{about}\n</userAbout>\n" if about else ""
    emails = "\n".join(f"<email>\n{stringify_email(e, escape=newer)}\n<date>{e.get('date', 'unknown')}</date>\n</email>" for e in thread)
    tail = (f"IMPORTANT: You are writing an email as {account}. Write the reply from their perspective."
            if newer else f"IMPORTANT: The person you're writing an email for is: {thread[-1]['to']}.")
    return (f"\n{about_block}\n\n\n\nHere is the context of the email thread (from oldest to newest):\n{emails}\n     \n"
            f"Please write a reply to the email.\nToday's date is: 2026-11-20.\n{tail}").strip()


def thread_for(account: str, name: str = "Dana Ortiz", sender: str = "dana.ortiz@example.org") -> list[dict]:
    return [
        {"from": f"{account}", "to": f"{name} <{sender}>", "subject": "Quarterly numbers",
         "body": "Hi Dana, can you send the draft numbers?", "date": "2026-11-18T09:00:00.000Z"},
        {"from": f"{name} <{sender}>", "to": account, "subject": "Re: Quarterly numbers",
         "body": SECRET_BODY + " Can we talk Tuesday? <b>&</b>", "date": "2026-11-19T10:00:00.000Z"},
    ]


def ollama_draft_body(account: str, *, stream=False, fmt="schema", newer=False, model="llama3.1") -> dict:
    system = SYSTEM_NEW if newer else SYSTEM_OLD
    body = {"model": model, "messages": [{"role": "system", "content": system},
                                         {"role": "user", "content": draft_prompt(thread_for(account), account, newer=newer)}],
            "stream": stream, "options": {"temperature": 0}}
    if fmt == "schema":
        body["format"] = DRAFT_SCHEMA
    elif fmt == "json":  # AI SDK json mode: the schema goes into the system text
        body["messages"][0]["content"] = (system + "\n\nJSON schema:\n" + json.dumps(DRAFT_SCHEMA) +
                                          "\nYou MUST answer with a JSON object that matches the JSON schema above.")
        body["format"] = "json"
    return body


def openai_draft_body(account: str, *, stream=False, model="llama3.1") -> dict:
    return {"model": model, "stream": stream, "temperature": 0,
            "messages": [{"role": "system", "content": SYSTEM_NEW},
                         {"role": "user", "content": draft_prompt(thread_for(account), account, newer=True)}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "response", "strict": True, "schema": DRAFT_SCHEMA}}}


RULES_BODY = {  # a rule-matching call: structured, but not drafting
    "model": "llama3.1", "stream": False,
    "messages": [{"role": "system", "content": "You are an AI assistant that helps people manage their emails by choosing rules."},
                 {"role": "user", "content": "<email><from>x@y.org</from><subject>Invoice</subject><body>Pay</body></email>"}],
    "format": {"type": "object", "properties": {"ruleName": {"type": "string"}, "reason": {"type": "string"}},
               "required": ["ruleName", "reason"]},
}


# ------------------------------------------------------------------------------- upstream stub
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream:
    """A recording stand-in for Ollama / an OpenAI-compatible server. Voice models answer
    ``voice of <model> #<n>`` (n = how many user turns the prompt had words of); anything else a
    fixed odd byte string, so byte-for-byte pass-through is checkable."""

    PASS_BYTES = b'{"model":"llama3.1","message":{"role":"assistant","content":"{\\"ruleName\\": \\"Invoices\\"}"},"done":true}  \n'

    def __init__(self, delay: float = 0.0):
        self.requests: list[dict] = []
        self.delay = delay
        self.missing: set[str] = set()
        self.answer = None  # model → the voice model's text, to replace the default one
        up = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _record(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                up.requests.append({"method": self.command, "path": self.path, "raw": raw, "headers": dict(self.headers)})
                return raw

            def _send(self, status, data: bytes, ctype="application/json; charset=utf-8"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._record()
                if self.path.startswith("/api/tags"):
                    return self._send(200, b'{"models":[{"name":"llama3.1:latest"}]}')
                self._send(404, b'{"error":"404 page not found"}')

            def do_HEAD(self):
                self._record()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                raw = self._record()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                model = body.get("model", "")
                if up.delay:
                    time.sleep(up.delay)
                if not model.startswith("emailai-"):
                    return self._send(200, up.PASS_BYTES)
                if model in up.missing:
                    return self._send(404, json.dumps({"error": f"model '{model}' not found"}).encode())
                text = f"  Hi Dana,\n\nvoice of {model} \"quoted\" \\ seed={(body.get('options') or {}).get('seed', body.get('seed'))}\n"
                if up.answer:
                    text = up.answer(model)
                if self.path == "/v1/chat/completions":
                    return self._send(200, json.dumps({"choices": [{"message": {"role": "assistant", "content": text},
                                                                    "finish_reason": "stop"}],
                                                       "usage": {"prompt_tokens": 5, "completion_tokens": 7}}).encode())
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-ndjson")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    words = text.split(" ")
                    for i, w in enumerate(words):
                        piece = w + (" " if i < len(words) - 1 else "")
                        line = (json.dumps({"model": model, "message": {"role": "assistant", "content": piece}, "done": False}) + "\n").encode()
                        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    line = (json.dumps({"model": model, "message": {"role": "assistant", "content": ""}, "done": True,
                                        "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 7}) + "\n").encode()
                    self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n0\r\n\r\n")
                    return
                self._send(200, json.dumps({"model": model, "message": {"role": "assistant", "content": text}, "done": True,
                                            "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 7}).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def voice_calls(self):
        out = []
        for r in self.requests:
            with contextlib.suppress(ValueError):
                b = json.loads(r["raw"])
                if b.get("model", "").startswith("emailai-"):
                    out.append(b)
        return out


@contextlib.contextmanager
def running_gateway(config: GatewayConfig):
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on", log_config=None))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 90  # startup builds the PII scrubber's engines: slow on a busy machine
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "gateway did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(10)


def record(user, email, **kw):
    return {"user_id": user, "model": f"emailai-{user}", "email": email, **kw}


ANA, BEN = "ana@acme.example", "ben@acme.example"


@pytest.fixture()
def upstream():
    up = Upstream()
    yield up
    up.close()


@pytest.fixture()
def gateway(upstream, tmp_path):
    records = [record("ana", ANA), record("ben", BEN)]
    cfg = GatewayConfig(upstream=upstream.url + "/api", directory=UserDirectory(records=records))
    with running_gateway(cfg) as url:
        yield url


def expected_instruction(account=ANA):
    return instruction_for(subject="Re: Quarterly numbers", recipient="Dana",
                           replying_to=SECRET_BODY + " Can we talk Tuesday? <b>&</b>")


# ------------------------------------------------------------------------------- parsing + shape
def test_parser_recognises_both_prompt_forms_and_nothing_else():
    for newer in (False, True):
        p = draft_request(ollama_draft_body(ANA, newer=newer)["messages"])
        assert p is not None and p.account_email == ANA
        assert len(p.thread) == 2 and p.thread[-1]["content"].endswith("<b>&</b>")  # unescaped
        assert to_instruction(p) == expected_instruction()
    assert draft_request(RULES_BODY["messages"]) is None
    assert draft_request([{"role": "user", "content": "hello"}]) is None
    assert draft_request({"not": "a list"}) is None and draft_request(7) is None
    p = draft_request(ollama_draft_body(ANA, fmt="json")["messages"])
    assert p.schema == DRAFT_SCHEMA
    # the drafting user prompt under another system text is some other call: it passes through
    msgs = ollama_draft_body(ANA)["messages"]
    assert draft_request([{"role": "system", "content": "Summarise this thread."}, msgs[1]]) is None
    assert draft_request(msgs[1:]) is None
    # an account that is no address (a training row's scrubbed "<EMAIL>") routes nobody
    scrubbed = draft_prompt(thread_for("<EMAIL>"), "<EMAIL>", newer=True)
    assert draft_request([msgs[0], {"role": "user", "content": scrubbed}]) is None


def test_shape_fills_the_schema_and_streaming_pieces_concatenate_to_it():
    schema = {"type": "object", "properties": {"subject": {"type": "string"}, "body": {"type": "string"},
                                               "tone": {"enum": ["warm", "dry"]}, "n": {"type": "integer"}},
              "required": ["body", "tone", "n"]}
    obj = build_object(schema, "Hi!")
    assert obj == {"body": "Hi!", "tone": "warm", "n": 0}
    assert build_object(DRAFT_SCHEMA, "x") == {"reply": "x"}
    t = JsonTemplate(DRAFT_SCHEMA)
    text = 'Line "one"\n\\ two ü \u2028 end'
    pieces = [text[:3], text[3:9], text[9:]]
    assert json.loads(t.prefix + "".join(t.escape(p) for p in pieces) + t.suffix) == {"reply": text}


# ------------------------------------------------------------------------------- routing
def test_draft_goes_to_the_users_voice_model_in_the_requested_json_shape(gateway, upstream):
    r = httpx.post(gateway + "/api/chat", json=ollama_draft_body(ANA), timeout=10)
    assert r.status_code == 200 and r.headers["x-mailvoice-route"] == "voice"
    out = r.json()
    assert out["done"] is True and out["model"] == "llama3.1"
    reply = json.loads(out["message"]["content"])
    assert set(reply) == {"reply"} and reply["reply"].startswith("Hi Dana,") and "voice of emailai-ana" in reply["reply"]
    call, = upstream.voice_calls()
    assert call["model"] == "emailai-ana" and "format" not in call
    assert call["messages"] == [{"role": "system", "content": SYSTEM_PROMPT},
                                {"role": "user", "content": expected_instruction()}]


def test_draft_streaming_and_json_mode_and_newer_prompt(gateway, upstream):
    r = httpx.post(gateway + "/api/chat", json=ollama_draft_body(BEN, stream=True, fmt="json", newer=True), timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines() if x.strip()]
    assert len(lines) > 3 and lines[-1]["done"] is True and all(not x["done"] for x in lines[:-1])
    reply = json.loads("".join(x["message"]["content"] for x in lines))
    assert reply["reply"].startswith("Hi Dana,") and "emailai-ben" in reply["reply"]
    assert reply["reply"] == reply["reply"].strip()
    assert upstream.voice_calls()[0]["stream"] is True  # streamed from the upstream, not faked


def test_draft_on_the_generate_route_and_the_openai_routes(gateway, upstream):
    body = ollama_draft_body(ANA)
    gen = {"model": "llama3.1", "system": body["messages"][0]["content"], "prompt": body["messages"][1]["content"],
           "format": DRAFT_SCHEMA, "stream": False}
    r = httpx.post(gateway + "/api/generate", json=gen, timeout=10)
    assert "emailai-ana" in json.loads(r.json()["response"])["reply"]
    r = httpx.post(gateway + "/v1/chat/completions", json=openai_draft_body(BEN), timeout=10)
    out = r.json()
    assert out["object"] == "chat.completion"
    assert "emailai-ben" in json.loads(out["choices"][0]["message"]["content"])["reply"]
    r = httpx.post(gateway + "/v1/chat/completions", json=openai_draft_body(ANA, stream=True), timeout=10)
    events = [ln[6:] for ln in r.text.splitlines() if ln.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "emailai-ana" in json.loads(text)["reply"] and chunks[-1]["choices"][0]["finish_reason"] == "stop"


PII_BODY = ("Call me on +1 415 555 0134 or write to dana.private@example.org. "
            "The staging key is AKIAIOSFODNN7EXAMPLE. Can we talk Tuesday?")


def test_the_thread_reaching_the_voice_model_is_pii_scrubbed_like_the_training_data(upstream):
    from mailvoice.dataset import pii

    pii._engine.cache_clear()  # the gateway builds the scrubber at startup, not on the first draft
    cfg = GatewayConfig(upstream=upstream.url, directory=UserDirectory(records=[record("ana", ANA)]))
    with running_gateway(cfg) as url:
        assert pii._engine.cache_info().currsize == 1
        thread = thread_for(ANA)
        thread[0]["from"] = f"Ana Lima <{ANA}>"
        thread[-1]["body"] = PII_BODY
        body = ollama_draft_body(ANA)
        body["messages"][1]["content"] = draft_prompt(thread, ANA, newer=True)
        r = httpx.post(url + "/api/chat", json=body, timeout=10)
        assert r.status_code == 200 and r.headers["x-mailvoice-route"] == "voice"
    call, = upstream.voice_calls()
    prompt = call["messages"][1]["content"]
    for raw in ("415", "0134", "dana.private", "example.org", "AKIA"):
        assert raw not in prompt
    assert prompt == instruction_for(subject="Re: Quarterly numbers", recipient="Dana", replying_to=(
        "Call me on <PHONE> or write to <EMAIL>. The staging key is <SECRET>. Can we talk Tuesday?"))
    # the same text as dataset.build would have trained on
    assert pii.scrub(PII_BODY, protect=["Ana Lima", "Ana"]).text in prompt


def test_protected_names_mirror_the_training_data():
    from mailvoice.gateway.emailai_calls import protected_names

    assert protected_names(["Ana Lima", '"Ana Lima"', "ana@acme.example", "", "Bo"]) == ["Ana Lima", "Ana", "Bo"]


def test_other_calls_pass_through_byte_for_byte(gateway, upstream):
    raw = json.dumps(RULES_BODY, indent=1).encode() + b"  "  # odd spacing survives untouched
    r = httpx.post(gateway + "/api/chat?x=1", content=raw, headers={"content-type": "application/json", "x-extra": "yes"}, timeout=10)
    assert r.status_code == 200 and r.content == Upstream.PASS_BYTES and r.headers["x-mailvoice-route"] == "pass"
    got = upstream.requests[-1]
    assert got["raw"] == raw and got["path"] == "/api/chat?x=1" and got["headers"].get("x-extra") == "yes"
    assert httpx.get(gateway + "/api/tags", timeout=10).json() == {"models": [{"name": "llama3.1:latest"}]}
    assert httpx.head(gateway + "/api/blobs/sha256:" + "0" * 64, timeout=10).status_code == 200
    r = httpx.post(gateway + "/api/chat", content=b"not json{", timeout=10)
    assert r.content == Upstream.PASS_BYTES and upstream.requests[-1]["raw"] == b"not json{"
    assert upstream.voice_calls() == []


def _adapter(folder, weights=b"weights"):
    """A PEFT adapter folder's shape: its config and weights (what an evaluation's digest covers)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(weights)
    return folder


def _evaluated(adapter, passed):
    from mailvoice.artifacts import Adapter

    rec = {"adapter_sha256": Adapter(adapter).digest(), "gate": {"passed": passed, "failures": [] if passed else ["voice score"]}}
    (adapter / "evaluation.json").write_text(json.dumps(rec))


def test_unknown_user_failed_gate_and_dry_run_get_the_base_model(upstream, tmp_path):
    adapter = _adapter(tmp_path / "adapter")
    _evaluated(adapter, False)
    records = [record("ana", ANA, adapter=str(adapter)), record("ben", BEN, dry_run=True)]
    cfg = GatewayConfig(upstream=upstream.url, directory=UserDirectory(records=records))
    with running_gateway(cfg) as url:
        for account in (ANA, BEN, "stranger@elsewhere.example"):
            body = ollama_draft_body(account)
            raw = json.dumps(body).encode()
            r = httpx.post(url + "/api/chat", content=raw, timeout=10)
            assert r.content == Upstream.PASS_BYTES and r.headers["x-mailvoice-route"] == "base"
            assert upstream.requests[-1]["raw"] == raw  # the base model got EmailAI's own request
    assert upstream.voice_calls() == []
    _evaluated(adapter, True)
    d = UserDirectory(records=records)
    assert d.route_for_email(ANA).model == "emailai-ana"
    assert UserDirectory(records=[record("cy", "cy@x.example")], require_eval=True).route_for_email("cy@x.example").model is None


def test_gateway_and_deploy_gates_agree_an_evaluation_of_older_weights_is_not_trusted(tmp_path):
    """Retraining in place after a passing evaluation: deploy --require-eval refuses the new
    weights, and so must the gateway (it used to read only ``gate.passed``)."""
    from mailvoice.artifacts import Adapter
    from mailvoice.errors import MailvoiceError

    run = tmp_path / "run"
    adapter = _adapter(run / "final")
    _evaluated(adapter, True)
    rec = record("ana", ANA, adapter=str(run))  # a run folder: its final/ is the adapter
    for require_eval in (False, True):
        assert UserDirectory(records=[rec], require_eval=require_eval).route_for_email(ANA).reason == "voice"
    assert Adapter.open(run).require_gate()["gate"]["passed"]
    (adapter / "adapter_model.safetensors").write_bytes(b"retrained weights")
    with pytest.raises(MailvoiceError, match="changed since its last evaluation"):
        Adapter.open(run).require_gate()
    for require_eval in (False, True):
        route = UserDirectory(records=[rec], require_eval=require_eval).route_for_email(ANA)
        assert route.model is None and route.reason == "gate-failed"


def test_users_map_file_and_registry_on_disk(upstream, tmp_path):
    from mailvoice.deploy import registry
    from mailvoice.gateway import load_users_map

    registry.save({"user_id": "ana", "model": "emailai-ana"}, tmp_path)
    m = tmp_path / "users.json"
    m.write_text(json.dumps({"Ana.Work@Acme.example": "ana"}))
    d = UserDirectory(tmp_path, users_map=load_users_map(m))
    assert d.route_for_email("ana.work@acme.example").model == "emailai-ana"
    assert d.route_for_email(ANA).reason == "no-user"


def test_an_address_two_users_claim_goes_to_nobody_unless_the_map_says(caplog):
    caplog.set_level(logging.INFO)
    recs = [record("ana", ANA), {"user_id": "ben", "model": "emailai-ben", "emails": [ANA.upper(), BEN]}]
    d = UserDirectory(records=recs)
    assert d.route_for_email(ANA).model is None and d.route_for_email(ANA).reason == "ambiguous-email"
    assert d.route_for_email(BEN).model == "emailai-ben" and d.summary()["ambiguous_emails"] == 1
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "1 account address(es)" in logs and ANA not in logs
    assert UserDirectory(records=recs, users_map={ANA: "ana"}).route_for_email(ANA).model == "emailai-ana"


def test_voice_model_missing_upstream_falls_back_to_base(gateway, upstream):
    upstream.missing.add("emailai-ana")
    r = httpx.post(gateway + "/api/chat", json=ollama_draft_body(ANA), timeout=10)
    assert r.content == Upstream.PASS_BYTES and r.headers["x-mailvoice-route"] == "base"


def test_upstream_down_is_a_clear_error_in_ollamas_shape():
    cfg = GatewayConfig(upstream=f"http://127.0.0.1:{free_port()}", directory=UserDirectory(records=[record("ana", ANA)]))
    with running_gateway(cfg) as url:
        r = httpx.post(url + "/api/chat", json=RULES_BODY, timeout=10)
        assert r.status_code == 502 and set(r.json()) == {"error"} and "unreachable" in r.json()["error"]
        r = httpx.post(url + "/api/chat", json=ollama_draft_body(ANA), timeout=10)
        assert r.status_code == 502 and "unreachable" in r.json()["error"]
        r = httpx.post(url + "/api/chat", json=ollama_draft_body(ANA, stream=True), timeout=10)
        assert r.status_code == 502 and "unreachable" in r.json()["error"]
        r = httpx.post(url + "/v1/chat/completions", json=openai_draft_body(ANA), timeout=10)
        assert r.status_code == 502 and "unreachable" in r.json()["error"]["message"]


def test_bearer_token_and_no_text_in_logs(upstream, caplog):
    cfg = GatewayConfig(upstream=upstream.url, token="s3cret", upstream_token="up-key",
                        directory=UserDirectory(records=[record("ana", ANA)]))
    caplog.set_level(logging.DEBUG)
    with running_gateway(cfg) as url:
        r = httpx.post(url + "/api/chat", json=ollama_draft_body(ANA), timeout=10)
        assert r.status_code == 401 and "error" in r.json()
        r = httpx.post(url + "/api/chat", json=ollama_draft_body(ANA), headers={"Authorization": "Bearer wrong"}, timeout=10)
        assert r.status_code == 401
        ok = {"Authorization": "Bearer s3cret"}
        assert httpx.post(url + "/api/chat", json=ollama_draft_body(ANA), headers=ok, timeout=10).status_code == 200
        assert httpx.post(url + "/api/chat", json=RULES_BODY, headers=ok, timeout=10).status_code == 200
    assert all(r["headers"].get("authorization") in ("Bearer up-key", None) for r in upstream.requests)
    assert upstream.requests and all("s3cret" not in json.dumps(r["headers"]) for r in upstream.requests)
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "route=draft" in logs and "route=pass" in logs
    for secret in ("periwinkle", "Zanzibar", ANA, "Dana", "Quarterly", "voice of"):
        assert secret not in logs


def test_twenty_parallel_requests_from_two_users_each_get_their_own(upstream):
    upstream.delay = 0.05  # overlap the requests in the upstream
    cfg = GatewayConfig(upstream=upstream.url, directory=UserDirectory(records=[record("ana", ANA), record("ben", BEN)]))
    with running_gateway(cfg) as url:
        who = [ANA if i % 2 else BEN for i in range(20)]

        def one(i):
            body = ollama_draft_body(who[i], stream=bool(i % 3 == 0))
            r = httpx.post(url + "/api/chat", json=body, timeout=30)
            if body["stream"]:
                return json.loads("".join(json.loads(x)["message"]["content"] for x in r.text.splitlines() if x.strip()))["reply"]
            return json.loads(r.json()["message"]["content"])["reply"]

        with ThreadPoolExecutor(20) as ex:
            replies = list(ex.map(one, range(20)))
    for account, reply in zip(who, replies):
        mine, other = ("emailai-ana", "emailai-ben") if account == ANA else ("emailai-ben", "emailai-ana")
        assert mine in reply and other not in reply


def test_best_of_n_returns_the_highest_scored_candidate(upstream):
    seen = {}

    def scorer(user_id, texts, stopped=None):
        seen["user"], seen["n"], seen["stopped"] = user_id, len(texts), stopped
        return [1.0 if "seed=2" in t else 0.0 for t in texts]

    cfg = GatewayConfig(upstream=upstream.url, candidates=4, scorer=scorer,
                        directory=UserDirectory(records=[record("ana", ANA)]))
    with running_gateway(cfg) as url:
        r = httpx.post(url + "/api/chat", json=ollama_draft_body(ANA, stream=True), timeout=10)
    text = "".join(json.loads(x)["message"]["content"] for x in r.text.splitlines() if x.strip())
    assert "seed=2" in json.loads(text)["reply"]
    assert seen == {"user": "ana", "n": 4, "stopped": [True] * 4} and len(upstream.voice_calls()) == 4
    assert all(c["options"]["temperature"] > 0 for c in upstream.voice_calls())


def test_openai_kind_upstream_for_voice_models(upstream):
    cfg = GatewayConfig(upstream=upstream.url + "/v1", upstream_api="openai", directory=UserDirectory(records=[record("ana", ANA)]))
    with running_gateway(cfg) as url:
        r = httpx.post(url + "/api/chat", json=ollama_draft_body(ANA, stream=True), timeout=10)
    text = "".join(json.loads(x)["message"]["content"] for x in r.text.splitlines() if x.strip())
    assert "emailai-ana" in json.loads(text)["reply"]
    assert upstream.requests[-1]["path"] == "/v1/chat/completions"


def test_write_command_through_the_registry_and_an_upstream(upstream, tmp_path):
    from typer.testing import CliRunner

    from mailvoice.cli import app
    from mailvoice.deploy import registry

    registry.save({"user_id": "ana", "model": "emailai-ana"}, tmp_path)
    eml = tmp_path / "in.eml"
    eml.write_bytes(b"From: Dana Ortiz <dana.ortiz@example.org>\r\nTo: ana@acme.example\r\nSubject: Lunch\r\n"
                    b"Message-ID: <x@y>\r\n\r\nAre you free for lunch on Friday?\r\n")
    r = CliRunner().invoke(app, ["write", "say yes, suggest noon", "--user-id", "ana", "--reply-to", str(eml),
                                 "--upstream", upstream.url, "--workspace", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert "voice of emailai-ana" in out["text"] and out["model"] == "emailai-ana"
    call, = upstream.voice_calls()
    assert call["messages"][1]["content"] == instruction_for(
        subject="Re: Lunch", recipient="Dana", replying_to="Are you free for lunch on Friday?", notes="say yes, suggest noon")


def test_write_reply_to_is_pii_scrubbed_like_the_gateway(tmp_path):
    from mailvoice.gateway.compose import instruction_from

    eml = tmp_path / "in.eml"
    eml.write_bytes(b"From: Dana Ortiz <dana.ortiz@example.org>\r\nTo: Ana Lima <ana@acme.example>\r\n"
                    b"Subject: Lunch\r\nMessage-ID: <x@y>\r\n\r\n" + PII_BODY.encode() + b"\r\n")
    got = instruction_from("say yes", eml)
    assert got == instruction_for(subject="Re: Lunch", recipient="Dana", notes="say yes", replying_to=(
        "Call me on <PHONE> or write to <EMAIL>. The staging key is <SECRET>. Can we talk Tuesday?"))


def test_write_reply_to_with_a_hostile_header_is_one_error_before_any_parsing(tmp_path):
    """The header caps of every mail source apply to --reply-to too: a 100 KB To: list is refused
    by size, not parsed."""
    from mailvoice.errors import MailvoiceError
    from mailvoice.gateway.compose import instruction_from

    eml = tmp_path / "in.eml"
    eml.write_bytes(b"From: a@example.org\r\nTo: " + b"x@example.org, " * 7_000 + b"\r\nSubject: Hi\r\n\r\nHello\r\n")
    with pytest.raises(MailvoiceError, match="header field too large"):
        instruction_from("say yes", eml)


def test_mcp_server_exposes_draft_email_only_for_its_users(upstream, tmp_path):
    import asyncio

    pytest.importorskip("mcp")
    from mailvoice.gateway.mcp_server import build_server

    server = build_server(["ana"], root=tmp_path, upstream=upstream.url)
    tools = asyncio.run(server.list_tools())
    assert [t.name for t in tools] == ["draft_email"]
    res = asyncio.run(server.call_tool("draft_email", {"notes": "thanks for the numbers"}))
    assert "emailai-ana" in json.dumps(res.model_dump() if hasattr(res, "model_dump") else str(res))
    with pytest.raises(Exception):
        asyncio.run(server.call_tool("draft_email", {"notes": "x", "user_id": "ben"}))


# ------------------------------------------------------------------------------- the fork's calls (issue 14)
def _fork_thread():
    return [
        {"from": "Dana Ortiz <dana.ortiz@example.org>", "subject": "Quarterly numbers", "date": "2026-11-19T10:00:00.000Z",
         "content": SECRET_BODY + " Tom &amp; Jerry </email> <b>&</b>"},
    ]


def test_the_forks_draft_and_nudge_go_to_the_voice_model(gateway, upstream):
    """The fork's draft-with-knowledge prompt (unescaped, no <to>) and its generate-nudge call
    (plain text, written as the user) are both answered by that user's voice model."""
    msgs = ep.fork_request(_fork_thread(), email=ANA)
    r = httpx.post(gateway + "/api/chat", json={"model": "llama3.1", "messages": msgs, "stream": False,
                                                "format": DRAFT_SCHEMA}, timeout=10)
    assert r.status_code == 200 and r.headers["x-mailvoice-route"] == "voice"
    assert "voice of emailai-ana" in json.loads(r.json()["message"]["content"])["reply"]
    call = upstream.voice_calls()[-1]
    assert call["model"] == "emailai-ana"
    assert "Tom &amp; Jerry </email> <b>&</b>" in call["messages"][1]["content"]  # the body as EmailAI sent it
    # the nudge: the user's own email waits for an answer; generateText, so plain text comes back
    thread = _fork_thread() + [{"from": ANA, "subject": "Re: Quarterly numbers", "date": "2026-11-20T10:00:00.000Z",
                                "content": "Here are the numbers you asked for."}]
    r = httpx.post(gateway + "/api/chat", json={"model": "llama3.1", "messages": ep.nudge_request(thread),
                                                "stream": False}, timeout=10)
    assert r.status_code == 200 and r.headers["x-mailvoice-route"] == "voice"
    assert r.json()["message"]["content"].startswith("Hi Dana,")
    call = upstream.voice_calls()[-1]
    assert call["model"] == "emailai-ana"
    assert call["messages"][1]["content"] == instruction_for(
        subject="Re: Quarterly numbers", recipient="Dana",
        notes="A short, polite follow-up to my last email, which has had no answer yet: nudge for a response.")
    # a nudge for someone without a voice model passes through to the base model untouched
    other = [dict(m) for m in thread]
    other[-1]["from"] = "zoe@elsewhere.example"
    body = {"model": "llama3.1", "messages": ep.nudge_request(other), "stream": False}
    r = httpx.post(gateway + "/api/chat", json=body, timeout=10)
    assert r.headers["x-mailvoice-route"] == "base" and r.content == Upstream.PASS_BYTES
    assert json.loads(upstream.requests[-1]["raw"]) == body


def test_writing_calls_without_a_user_address_and_classifiers_stay_on_base(gateway, upstream):
    """Rule action arguments (ai-choose-args: a tool call) and compose autocomplete write as the user
    but name no address of theirs; rule choice classifies: all three reach the base model unchanged."""
    calls = [
        {"model": "llama3.1", "stream": False, "messages": [
            {"role": "system", "content": "You are an AI assistant that helps people manage their emails.\n\n<key_instructions>\n"
                                          "- Never mention you are an AI assistant in responses\n</key_instructions>"},
            {"role": "user", "content": "Process this email according to the selected rule:\n\n<selected_rule>\nReply "
                                        f"to investors\n</selected_rule>\n\n<email>\n<from>{ANA}</from>\n<subject>Hi</subject>\n"
                                        "<body>Invest?</body>\n</email>"}],
         "tools": [{"type": "function", "function": {"name": "apply_rule", "parameters": {"type": "object"}}}]},
        {"model": "llama3.1", "stream": True, "messages": [
            {"role": "system", "content": "You are an AI writing assistant that continues existing text based on context "
                                          "from prior text."},
            {"role": "user", "content": f"Hi Dana, as {ANA} I wanted to"}]},
        RULES_BODY,
    ]
    for body in calls:
        r = httpx.post(gateway + "/api/chat", json=body, timeout=10)
        assert r.headers["x-mailvoice-route"] == "pass" and r.content == Upstream.PASS_BYTES
        assert json.loads(upstream.requests[-1]["raw"]) == body
    assert upstream.voice_calls() == []


def test_token_in_the_url_path_for_clients_that_send_no_header(upstream):
    """EmailAI's Ollama provider sends no headers: OLLAMA_BASE_URL=http://gw/t/<token>/api works."""
    cfg = GatewayConfig(upstream=upstream.url, token="s3cret", directory=UserDirectory(records=[record("ana", ANA)]))
    with running_gateway(cfg) as url:
        r = httpx.post(url + "/t/s3cret/api/chat", json=ollama_draft_body(ANA), timeout=10)
        assert r.status_code == 200 and r.headers["x-mailvoice-route"] == "voice"
        r = httpx.post(url + "/t/s3cret/api/chat", json=RULES_BODY, timeout=10)
        assert r.status_code == 200 and r.content == Upstream.PASS_BYTES
        assert upstream.requests[-1]["path"] == "/api/chat"  # the token never reaches the upstream
        assert httpx.get(url + "/t/s3cret/api/tags", timeout=10).status_code == 200
        assert upstream.requests[-1]["path"] == "/api/tags"
        for bad in ("/t/wrong/api/chat", "/t//api/chat", "/t/s3cre/api/chat", "/api/chat"):
            assert httpx.post(url + bad, json=RULES_BODY, timeout=10).status_code == 401
    assert all("s3cret" not in r["path"] for r in upstream.requests)
