"""The gateway in front of the real-``llama-server``-backed test Ollama: two users' adapters,
20 parallel EmailAI drafting requests, each answer equal to that user's adapter called directly.

Needs the llama.cpp tools (``mailvoice tools install``); skipped with the reason otherwise.
"""

from __future__ import annotations

import hashlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_gateway import running_gateway, ollama_draft_body, expected_instruction  # noqa: E402

from mailvoice.chat import CHATML, SYSTEM_PROMPT  # noqa: E402
from mailvoice.gateway import GatewayConfig, UserDirectory  # noqa: E402


def _toolchain():
    from mailvoice import tools
    from mailvoice.errors import MailvoiceError

    try:
        return tools.require_toolchain(binaries=("llama-server",))
    except MailvoiceError as e:
        pytest.skip(f"llama.cpp tools not built (run `mailvoice tools install`): {e}")


@pytest.fixture(scope="module")
def two_user_ollama(tiny_model, tmp_path_factory):
    tc = _toolchain()
    from fakes.ollama_server import FakeOllama
    from test_deploy import make_random_adapter

    from mailvoice.deploy.gguf import convert_hf, convert_lora, resolve_base

    work = tmp_path_factory.mktemp("gw-llama")
    base_gguf = convert_hf(tc, tiny_model, work / "base.gguf", outtype="f32")
    loras = {}
    for i, user in enumerate(("ana", "ben")):
        ad = make_random_adapter(tiny_model, work / f"ad-{user}", seed=10 + i, scale=8.0)
        loras[user] = convert_lora(tc, ad, resolve_base(ad), work / f"{user}.gguf")
    fake = FakeOllama(work / "ollama", tc.bin("llama-server"), threads=1)
    fake.start()

    def push(p: Path) -> str:
        data = p.read_bytes()
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        assert httpx.post(f"{fake.url}/api/blobs/{d}", content=data, timeout=60).status_code in (200, 201)
        return d

    base_d = push(base_gguf)
    for user, lora in loras.items():
        body = {"model": f"emailai-{user}", "files": {"model.gguf": base_d}, "adapters": {"adapter.gguf": push(lora)},
                "template": CHATML.ollama_template, "system": SYSTEM_PROMPT, "stream": False,
                "parameters": {"num_predict": 16, "temperature": 0, "top_k": 1, "stop": list(CHATML.stop)}}
        r = httpx.post(fake.url + "/api/create", json=body, timeout=120)
        assert r.status_code == 200 and r.json().get("status") == "success", r.text
    yield fake
    fake.stop()


def test_parallel_drafts_from_two_users_match_each_users_adapter(two_user_ollama):
    fake = two_user_ollama
    accounts = {"ana": "ana@acme.example", "ben": "ben@acme.example"}
    direct = {}
    for user in accounts:
        r = httpx.post(fake.url + "/api/chat", timeout=120, json={
            "model": f"emailai-{user}", "stream": False,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": expected_instruction()}]})
        direct[user] = r.json()["message"]["content"].strip()
    assert direct["ana"] != direct["ben"], "the two random adapters should write differently"

    recs = [{"user_id": u, "model": f"emailai-{u}", "email": e} for u, e in accounts.items()]
    cfg = GatewayConfig(upstream=fake.url, directory=UserDirectory(records=recs))
    who = ["ana" if i % 2 else "ben" for i in range(20)]
    with running_gateway(cfg) as url:
        def one(i):
            body = ollama_draft_body(accounts[who[i]], stream=bool(i % 4 == 0))
            r = httpx.post(url + "/api/chat", json=body, timeout=300)
            if body["stream"]:
                text = "".join(json.loads(x)["message"]["content"] for x in r.text.splitlines() if x.strip())
            else:
                text = r.json()["message"]["content"]
            return json.loads(text)["reply"]

        with ThreadPoolExecutor(20) as ex:
            replies = list(ex.map(one, range(20)))
    for user, reply in zip(who, replies):
        assert reply == direct[user]
