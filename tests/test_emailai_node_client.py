"""EmailAI's real AI client against ``mailvoice gateway``: the npm packages the app ships
(``ai@4.3.6``, ``ollama-ai-provider@1.2.0``, ``zod@3.24.2``) run by our Node script
(tests/node/emailai_calls.cjs) making the app's calls — the draft (``generateObject`` with the
fork's prompt and zod schema), rule matching (``generateObject``), a nudge (``generateText``) and a
streamed plain call (``streamText``) — through the gateway, with the token in the URL path as the
header-less provider needs it.

Upstream: the Ollama-API test server (tests/fakes/ollama_server.py) running a real ``llama-server``
with SmolLM2-135M (base GGUF, and the same GGUF plus a LoRA for the user "ana") when the llama.cpp
tools are built; else the same server answering from a stand-in model that names itself. The npm
packages come from ``scripts/bootstrap.sh test`` (cached in ``~/.cache/mailvoice/npm-emailai``);
the test installs them there itself when npm is present and they are not. Skipped only when Node
or npm is missing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from fakes import emailai_prompts as ep
from fakes.ollama_server import FakeOllama
from test_gateway import running_gateway

from mailvoice.chat import CHATML, SYSTEM_PROMPT
from mailvoice.deploy.emailai_env import TOKEN_ENV, env_lines, with_token
from mailvoice.gateway import GatewayConfig, UserDirectory
from mailvoice.gateway.emailai_calls import draft_request, to_instruction

SCRIPT = Path(__file__).parent / "node" / "emailai_calls.cjs"
# the fork's apps/web/package.json pins (zod-to-json-schema too: the AI SDK's own range would take a
# newer one that needs zod >= 3.25)
NPM_PACKAGES = ("ai@4.3.6", "ollama-ai-provider@1.2.0", "zod@3.24.2", "zod-to-json-schema@3.24.5")
BASE = "smollm2:135m-instruct-fp16"  # the base model's Ollama name: what deploy tells EmailAI to use
ANA, ZOE = "ana@acme.example", "zoe@elsewhere.example"
TOKEN = "gw-test-token"

pytestmark = pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")), reason="Node.js/npm not installed")


def npm_dir() -> Path:
    if os.environ.get("MAILVOICE_NPM_EMAILAI"):
        return Path(os.environ["MAILVOICE_NPM_EMAILAI"])
    return Path(os.environ.get("MAILVOICE_CACHE") or Path.home() / ".cache" / "mailvoice") / "npm-emailai"


@pytest.fixture(scope="module")
def emailai_npm() -> Path:
    d = npm_dir()
    want = {p.rsplit("@", 1)[0]: p.rsplit("@", 1)[1] for p in NPM_PACKAGES}

    def installed() -> bool:
        for name, version in want.items():
            pj = d / "node_modules" / name / "package.json"
            if not pj.is_file() or json.loads(pj.read_text()).get("version") != version:
                return False
        return True

    if not installed():
        r = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--save-exact", "--prefix", str(d), *NPM_PACKAGES],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0 and installed(), f"npm could not install {NPM_PACKAGES}: {r.stderr[-500:]}"
    return d


# ------------------------------------------------------------------------------- the stand-in model
def _schema_in_prompt(prompt: str) -> dict | None:
    at = prompt.find("JSON schema:")
    start = prompt.find("{", at) if at >= 0 else -1
    if start < 0:
        return None
    return json.JSONDecoder().raw_decode(prompt, start)[0]


def _fill(schema: dict, text: str):
    t = schema.get("type")
    if t == "object":
        return {k: _fill(v, text) for k, v in (schema.get("properties") or {}).items()}
    return {"string": text, "boolean": False, "number": 0, "integer": 0, "array": []}.get(t, text)


def scripted(model: str, prompt: str, fmt) -> str:
    """What a model says without llama.cpp: its own name, as JSON when ``format`` asks for it
    (the schema from ``format``, or the one the AI SDK wrote into the prompt for "json")."""
    text = f"Hi Sam, this is {model.split(':')[0]} writing."
    if fmt is None:
        return text
    schema = fmt if isinstance(fmt, dict) else _schema_in_prompt(prompt) or {"type": "object", "properties": {}}
    return json.dumps(_fill(schema, text))


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, request):
    """(Ollama-API server, "llama" | "scripted")."""
    from mailvoice import tools
    from mailvoice.errors import MailvoiceError

    work = tmp_path_factory.mktemp("node-client")
    params = {"num_predict": 96, "temperature": 0, "top_k": 1, "stop": list(CHATML.stop)}
    try:
        tc = tools.require_toolchain(binaries=("llama-server",))
    except MailvoiceError:
        tc = None
    if tc is None:
        fake = FakeOllama(work / "ollama", None, scripted=scripted)
        fake.start()
        for name in (BASE, "emailai-ana"):
            fake.add_scripted_model(name, template=CHATML.ollama_template, parameters=params)
        yield fake, "scripted"
        fake.stop()
        return
    from test_deploy import make_random_adapter

    from mailvoice.deploy.gguf import convert_hf, convert_lora, resolve_base

    smollm2 = request.getfixturevalue("smollm2")
    base_gguf = convert_hf(tc, smollm2, work / "base.gguf", outtype="f16")
    ad = make_random_adapter(smollm2, work / "ad-ana", seed=7, scale=8.0)
    lora = convert_lora(tc, ad, resolve_base(ad), work / "ana-lora.gguf")
    fake = FakeOllama(work / "ollama", tc.bin("llama-server"), threads=2)
    fake.start()

    def push(p: Path) -> str:
        import hashlib

        data = p.read_bytes()
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        assert httpx.post(f"{fake.url}/api/blobs/{d}", content=data, timeout=120).status_code in (200, 201)
        return d

    base_d = push(base_gguf)
    for name, adapters in ((BASE, None), ("emailai-ana", {"adapter.gguf": push(lora)})):
        body = {"model": name, "files": {"model.gguf": base_d}, "template": CHATML.ollama_template,
                "system": SYSTEM_PROMPT if adapters else "", "stream": False, "parameters": params}
        if adapters:
            body["adapters"] = adapters
        r = httpx.post(fake.url + "/api/create", json=body, timeout=300)
        assert r.status_code == 200 and r.json().get("status") == "success", r.text
    yield fake, "llama"
    fake.stop()


def _thread(account_last: str | None = None) -> list[dict]:
    thread = [{"from": "Sam Reed <sam.reed@client.example>", "subject": "Site visit", "date": "2024-03-04T09:15:00.000Z",
               "content": "Hi Ana,\n\nCould we do the site visit on Thursday? Parking & access: Tom &amp; co.\n\nSam"}]
    if account_last:
        thread.append({"from": account_last, "subject": "Re: Site visit", "date": "2024-03-04T11:00:00.000Z",
                       "content": "Thursday works. I'll check on parking."})
    return thread


RULES_SYSTEM = ("You are an AI assistant that helps people manage their emails.\n\n<user_rules>\n<rule>\n  <name>Newsletters"
                "</name>\n  <criteria>Newsletters and marketing</criteria>\n</rule>\n<rule>\n  <name>To reply</name>\n"
                f"  <criteria>Emails I must answer</criteria>\n</rule>\n</user_rules>\n\n<user_info>\n<email>{ANA}</email>\n"
                "</user_info>\n\n<outputFormat>\nRespond with a JSON object with the following fields:\n\"reason\" - the "
                "reason you chose that rule.\n\"ruleName\" - the exact name of the rule\n\"noMatchFound\" - true if no "
                "match was found, false otherwise\n</outputFormat>")


def test_the_apps_own_client_through_the_gateway(emailai_npm, upstream, caplog):
    fake, mode = upstream
    draft_msgs = ep.fork_request(_thread(), email=ANA, writing_style="Short and warm.")
    unknown_msgs = ep.fork_request(_thread(), email=ZOE)
    nudge_msgs = ep.nudge_request(_thread(ANA))
    spec = {
        "model": BASE,
        "draft": {"system": draft_msgs[0]["content"], "prompt": draft_msgs[1]["content"]},
        "unknownDraft": {"system": unknown_msgs[0]["content"], "prompt": unknown_msgs[1]["content"]},
        "nudge": {"system": nudge_msgs[0]["content"], "prompt": nudge_msgs[1]["content"]},
        "rules": {"system": RULES_SYSTEM, "prompt": "Select a rule to apply to this email that was sent to me:\n\n"
                                                    "<email>\n<from>news@shop.example</from>\n<subject>Sale</subject>\n"
                                                    "<body>50% off</body>\n</email>"},
        "stream": {"system": "You are an AI writing assistant that continues existing text based on context from "
                             "prior text.", "prompt": "Thanks for the update, I"},
    }
    if mode == "llama":
        # SmolLM2-135M as the base does not follow a schema given only as text (EmailAI's json mode);
        # for the base model's calls the schema goes in `format`, which llama.cpp's grammar enforces
        # (each string bounded, so the constrained answer closes within the token budget)
        spec["structured"] = ["rules", "unknownDraft"]
        spec["maxStringLength"] = 60
    # what `mailvoice deploy` prints for a gateway other machines reach, the token filled in as
    # deploy writes it into the .env: the base model as EmailAI's one model, the gateway's /t/<token>/api
    printed = with_token(env_lines("emailai-ana", fake.url, base_model=BASE, gateway_url="http://gw.example:8080"),
                         {TOKEN_ENV: TOKEN})
    assert printed["NEXT_PUBLIC_OLLAMA_MODEL"] == BASE
    spec["model"] = printed["NEXT_PUBLIC_OLLAMA_MODEL"]
    cfg = GatewayConfig(upstream=fake.url, token=TOKEN,
                        directory=UserDirectory(records=[{"user_id": "ana", "model": "emailai-ana", "email": ANA}]))
    caplog.set_level(logging.INFO, logger="mailvoice.gateway")
    with running_gateway(cfg) as url:
        # EmailAI's provider sends no headers: the token rides in the path, as printed
        spec["baseURL"] = printed["OLLAMA_BASE_URL"].replace("http://gw.example:8080", url)
        assert spec["baseURL"] == f"{url}/t/{TOKEN}/api"
        r = subprocess.run(["node", str(SCRIPT)], input=json.dumps(spec), capture_output=True, text=True, timeout=900,
                           env={**os.environ, "MAILVOICE_NPM_EMAILAI": str(emailai_npm)})
        assert r.returncode == 0, r.stderr[-2000:]
        out = json.loads(r.stdout)
        # without the token the same client is refused
        refused = subprocess.run(["node", str(SCRIPT)], input=json.dumps({**spec, "baseURL": f"{url}/api"}),
                                 capture_output=True, text=True, timeout=300,
                                 env={**os.environ, "MAILVOICE_NPM_EMAILAI": str(emailai_npm)})
    for call in ("draft", "unknownDraft", "rules", "nudge", "stream"):
        assert out[call]["ok"], f"{call}: {out[call].get('error')}"
    denied = json.loads(refused.stdout)["draft"]
    assert not denied["ok"] and "unauthorized" in denied["error"].lower()

    # the draft: the SDK parsed {reply}, written by ana's adapter — what that model says to the
    # prompt the gateway builds from the fork's request
    assert set(out["draft"]["object"]) == {"reply"}
    voice_prompt = to_instruction(draft_request(draft_msgs))

    def direct(model: str, prompt: str) -> str:
        resp = httpx.post(fake.url + "/api/chat", timeout=300, json={
            "model": model, "stream": False,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]})
        return resp.json()["message"]["content"].strip()

    ana_says = direct("emailai-ana", voice_prompt)
    assert out["draft"]["object"]["reply"] == ana_says
    if mode == "llama":
        assert ana_says != direct(BASE, voice_prompt), "the adapter should change what the model writes"
    else:
        assert "emailai-ana" in ana_says
    # the nudge: plain text from ana's voice model
    if mode == "scripted":
        assert out["nudge"]["text"] == "Hi Sam, this is emailai-ana writing."
    assert out["nudge"]["text"].strip() == direct("emailai-ana", to_instruction(draft_request(nudge_msgs)))
    # rule matching: the JSON its schema asks for, from the base model
    rules = out["rules"]["object"]
    assert isinstance(rules["reason"], str) and isinstance(rules["ruleName"], str)
    # streaming did not crash and produced text
    assert out["stream"]["text"].strip() and out["stream"]["pieces"] >= 1
    if mode == "scripted":
        assert set(out["unknownDraft"]["object"]) == {"reply"} and BASE.split(":")[0] in out["unknownDraft"]["object"]["reply"]
        assert BASE.split(":")[0] in rules["ruleName"] and BASE.split(":")[0] in out["stream"]["text"]
    # the gateway's own account of each call: two voice answers (draft, nudge) for ana, the rest base
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "mailvoice.gateway"]
    voice = [x for x in lines if x.startswith("route=draft call=")]
    assert sorted(x.split()[1] for x in voice) == ["call=draft", "call=nudge"] and all("user=ana" in x for x in voice)
    assert any(x.startswith("route=base:no-user ") for x in lines)  # zoe's draft
    assert sum(x.startswith("route=pass ") for x in lines) >= 2  # rule matching, the streamed call
    assert sum(x.startswith("route=denied ") for x in lines) >= 1
    # no email text, address or token in the gateway's log
    for secret in ("Thursday", "parking", ANA, ZOE, TOKEN, "Sam"):
        assert all(secret not in x for x in lines)


class _Recorder:
    """An Ollama-shaped endpoint that records each /api/chat body and answers one JSON object
    (valid for both zod schemas; zod drops the keys a schema does not name), streamed when asked."""

    ANSWER = json.dumps({"reply": "Noted.", "reason": "r", "ruleName": "Newsletters"})

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import threading

        self.bodies: list[dict] = []
        rec = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                rec.bodies.append(body)
                head = {"model": body.get("model"), "created_at": "2024-03-05T16:00:00Z"}
                final = {**head, "done": True, "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 1,
                         "eval_duration": 1, "total_duration": 1}
                piece = {"role": "assistant", "content": rec.ANSWER}
                if body.get("stream", True):  # Ollama streams unless told not to (docs/api.md)
                    data = (json.dumps({**head, "message": piece, "done": False}) + "\n"
                            + json.dumps({**final, "message": {"role": "assistant", "content": ""}}) + "\n").encode()
                    ctype = "application/x-ndjson"
                else:
                    data = (json.dumps({**final, "message": piece}) + "\n").encode()
                    ctype = "application/json"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_what_the_sdk_sends_is_what_we_train_and_parse(emailai_npm):
    """The fork's draft as the real SDK puts it on the wire: our fork variant's system text (with
    the AI SDK's JSON-schema note) and user prompt, character for character, and `format: "json"`."""
    from mailvoice.dataset.emailai_format import VARIANTS, parse_emailai_request, parse_nudge_request

    draft_msgs = ep.fork_request(_thread(), email=ANA)
    nudge_msgs = ep.nudge_request(_thread(ANA))
    spec = {"model": BASE, "draft": {"system": ep.FORK_SYSTEM, "prompt": draft_msgs[1]["content"]},
            "unknownDraft": {"system": ep.FORK_SYSTEM, "prompt": draft_msgs[1]["content"]},
            "nudge": {"system": nudge_msgs[0]["content"], "prompt": nudge_msgs[1]["content"]},
            "rules": {"system": RULES_SYSTEM, "prompt": "Select a rule"}, "stream": {"system": "s", "prompt": "p"}}
    rec = _Recorder()
    try:
        spec["baseURL"] = rec.url + "/api"
        r = subprocess.run(["node", str(SCRIPT)], input=json.dumps(spec), capture_output=True, text=True, timeout=300,
                           env={**os.environ, "MAILVOICE_NPM_EMAILAI": str(emailai_npm)})
    finally:
        rec.close()
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["draft"] == {"ok": True, "object": {"reply": "Noted."}}
    draft = rec.bodies[0]
    assert draft["format"] == "json" and draft["stream"] is False and draft["model"] == BASE
    assert draft["messages"] == [{"role": "system", "content": VARIANTS["fork"].system},
                                 {"role": "user", "content": draft_msgs[1]["content"]}]
    p = parse_emailai_request(draft["messages"], require_system=True)
    assert p.account_email == ANA and p.variant == "fork" and p.schema["required"] == ["reply"]
    nudge = next(b for b in rec.bodies if "format" not in b and not b.get("stream") and
                 parse_nudge_request(b["messages"]) is not None)
    assert parse_nudge_request(nudge["messages"]).account_email == ANA
    # streamText sends no "stream" key at all: it relies on Ollama's default (stream), as the gateway does
    streamed = [b for b in rec.bodies if "stream" not in b]
    assert len(streamed) == 1 and streamed[0]["messages"][-1] == {"role": "user", "content": "p"}
    assert out["stream"] == {"ok": True, "text": _Recorder.ANSWER, "pieces": 1}
