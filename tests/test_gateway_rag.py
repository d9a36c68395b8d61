"""The gateway serves each adapter the prompt it learned: with its retrieval index (prepare
--rag), or EmailAI's own prompt for one trained on train_emailai.jsonl. Same recording upstream
as test_gateway.py."""

import json

import httpx

from test_gateway import (ANA, BEN, SECRET_BODY, Upstream, expected_instruction, ollama_draft_body,
                          openai_draft_body, record, running_gateway)

from mailvoice.chat import EXAMPLES_HEADER, SYSTEM_PROMPT, instruction_for
from mailvoice.dataset.emailai_format import VARIANTS
from mailvoice.dataset.emailai_format import parse_emailai_request
from mailvoice.gateway import GatewayConfig, UserDirectory
from mailvoice.rag.index import Index, RagOptions

PAST = [("t1", "Budget numbers: I'll send the Zanzibar budget sheet by Friday. Dana, ping me if it slips."),
        ("t2", "Tuesday is fine for a call about the budget."),
        ("t3", "The printer on floor two is jammed again, sorry.")]


def adapter(tmp_path, name, *, train_file="train_chat.jsonl", rag=True):
    folder = tmp_path / name / "final"
    folder.mkdir(parents=True)
    (folder / "training_summary.json").write_text(json.dumps({"config": {"train_file": train_file}}))
    (folder / "adapter_config.json").write_text("{}")  # what makes it a PEFT adapter folder
    if rag:
        docs = [{"id": str(i), "thread_id": t, "key": text, "text": text} for i, (t, text) in enumerate(PAST)]
        Index(docs, RagOptions("bm25", 2)).save(folder / "retrieval")
    return folder


def test_an_adapter_trained_with_retrieval_gets_its_past_emails_in_the_prompt(tmp_path):
    up = Upstream()
    try:
        ana = adapter(tmp_path, "ana")
        recs = [record("ana", ANA, adapter=str(ana)), record("ben", BEN, adapter=str(adapter(tmp_path, "ben", rag=False)))]
        with running_gateway(GatewayConfig(upstream=up.url, directory=UserDirectory(records=recs))) as url:
            for who in (ANA, BEN):
                assert httpx.post(url + "/api/chat", json=ollama_draft_body(who), timeout=10).status_code == 200
        ana_call, ben_call = up.voice_calls()
        user = ana_call["messages"][1]["content"]
        assert EXAMPLES_HEADER in user
        # the same examples, in the same place, as instruction_for builds for training
        idx = Index.load(ana / "retrieval")
        body = SECRET_BODY + " Can we talk Tuesday? <b>&</b>"
        shown = idx.examples_for("Re: Quarterly numbers\n" + body)
        assert shown and all("printer" not in s for s in shown)
        assert user == instruction_for(subject="Re: Quarterly numbers", recipient="Dana", replying_to=body, examples=shown)
        assert ben_call["messages"] == [{"role": "system", "content": SYSTEM_PROMPT},
                                        {"role": "user", "content": expected_instruction()}]
    finally:
        up.close()


def test_an_adapter_trained_on_emailais_prompt_gets_that_prompt_scrubbed_and_its_json_unwrapped(tmp_path):
    up = Upstream()
    up.answer = lambda model: json.dumps({"reply": f"Hi Dana, numbers Friday. ({model})"})
    try:
        recs = [record("ana", ANA, adapter=str(adapter(tmp_path, "ana", train_file="train_emailai.jsonl")))]
        with running_gateway(GatewayConfig(upstream=up.url, directory=UserDirectory(records=recs))) as url:
            r = httpx.post(url + "/api/chat", json=ollama_draft_body(ANA), timeout=10)
            s = httpx.post(url + "/api/chat", json=ollama_draft_body(ANA, stream=True), timeout=10)
            o = httpx.post(url + "/v1/chat/completions", json=openai_draft_body(ANA), timeout=10)
        assert json.loads(r.json()["message"]["content"]) == {"reply": "Hi Dana, numbers Friday. (emailai-ana)"}
        streamed = "".join(json.loads(line)["message"]["content"] for line in s.text.splitlines() if line.strip())
        assert json.loads(streamed) == {"reply": "Hi Dana, numbers Friday. (emailai-ana)"}
        assert json.loads(o.json()["choices"][0]["message"]["content"])["reply"].startswith("Hi Dana")
        call = up.voice_calls()[0]
        # the training file is not where the registry says: the default variant, the fork's
        assert call["messages"][0]["content"] == VARIANTS["fork"].system
        parsed = parse_emailai_request(call["messages"])
        assert parsed is not None and parsed.account_email == "<EMAIL>"
        assert len(parsed.thread) == 1 and parsed.thread[0]["from"] == "Dana <EMAIL>"
        assert parsed.thread[0]["subject"] == "Quarterly numbers"
        raw = json.dumps(call)
        assert "dana.ortiz@example.org" not in raw and ANA not in raw and EXAMPLES_HEADER not in raw
    finally:
        up.close()


def test_the_emailai_variant_is_read_off_the_users_training_rows(tmp_path):
    """An adapter trained on upstream-format rows gets upstream's prompt, on fork rows the fork's."""
    from mailvoice.gateway.users import adapter_prompt

    for name in ("fork", "upstream"):
        data = tmp_path / "ws" / name / "data"
        data.mkdir(parents=True)
        row = {"messages": [{"role": "system", "content": VARIANTS[name].system}, {"role": "user", "content": "x"}]}
        (data / "train_emailai.jsonl").write_text(json.dumps(row) + "\n")
        ad = adapter(tmp_path, name, train_file="train_emailai.jsonl", rag=False)
        assert adapter_prompt(ad, [data]) == (None, "emailai", name)
        recs = [record(name, ANA, adapter=str(ad))]
        assert UserDirectory(tmp_path / "ws", records=recs).route_for_email(ANA).emailai_variant == name
    assert adapter_prompt(ad, [])[2] == "fork"  # the rows cannot be found: the default


def test_write_uses_the_adapters_index(tmp_path):
    from mailvoice.gateway.compose import write_draft

    up = Upstream()
    try:
        ana = adapter(tmp_path, "ana")
        (tmp_path / "ws" / "ana" / "models" / "emailai-ana").mkdir(parents=True)
        (tmp_path / "ws" / "ana" / "models" / "emailai-ana" / "deploy.json").write_text(
            json.dumps({"user_id": "ana", "model": "emailai-ana", "adapter": str(ana)}))
        write_draft("send the budget sheet", "ana", root=tmp_path / "ws", upstream=up.url, subject="Budget")
        user = up.voice_calls()[0]["messages"][1]["content"]
        assert EXAMPLES_HEADER in user and "Zanzibar budget sheet" in user and "printer" not in user
    finally:
        up.close()
