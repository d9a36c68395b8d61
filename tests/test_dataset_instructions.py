"""Reverse instructions: sanitising, backends (fake OpenAI / Ollama servers, tiny and real local
models), the cache that prevents a second call, scrubbed text only, one-line errors."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import DANA, DANA_MBOX  # noqa: E402
from fakes.openai_server import FakeChatServer  # noqa: E402

from mailvoice.chat import instruction_for, task_line  # noqa: E402
from mailvoice.dataset.build import DatasetOptions, Example, build_dataset  # noqa: E402
from mailvoice.dataset.instructions import (  # noqa: E402
    CACHE_FILE,
    InstructionCache,
    LocalBackend,
    OllamaBackend,
    OpenAIBackend,
    apply_llm_instructions,
    detect_api,
    make_backend,
    messages_for,
    sanitise_instruction,
)
from mailvoice.errors import MailvoiceError  # noqa: E402
from mailvoice.sources.record import MailRecord  # noqa: E402

GOOD = "Write an email to Sam confirming Thursday's site visit and asking about parking."


def _ex(i=1, *, reply=False, output=None, subject="Site visit", recipient="Sam"):
    return Example(
        id=f"e{i}", thread_id=f"t{i}", date=f"2024-03-0{i % 9 + 1}T10:00:00+00:00", instruction=task_line(
            subject=subject, recipient=recipient, is_reply=reply),
        input="Could we do Thursday? Where do we park?" if reply else "",
        output=output or f"Hi Sam!\n\nThursday at 10 works for the site visit ({i}). Where should I park?\n\nCheers,\nDana",
        recipient=recipient, subject=subject,
    )


_TOPICS = ["roses", "the pond", "gravel paths", "oak benches", "the herb spiral", "tulip bulbs", "a willow arch",
           "the compost bays", "lavender hedges", "slate steps", "the orchard", "fern beds", "a wildflower strip",
           "the greenhouse"]
_VERBS = ["order", "plant", "move", "price", "prune", "check", "water", "replace", "measure", "photograph",
          "clean", "mulch", "stake", "repot"]


def _records(n=12, secret_phone="+1 415 555 0199"):
    recs = []
    for i in range(n):
        t, v, w = _TOPICS[i], _VERBS[i], _VERBS[(i * 5 + 3) % len(_VERBS)]
        recs.append(MailRecord(
            message_id=f"m{i}@x", thread_id=f"m{i}@x", date=f"2024-03-{i + 1:02d}T10:00:00+00:00",
            from_addr=DANA, from_name="Dana Whitfield", to=(f"sam.reed{i}@client.example",),
            subject=f"{t.capitalize()} next week",
            text=(f"Hi Sam!\n\nShall we {v} {t} on day {i}? I could also {w} everything near {t} before you "
                  f"arrive. Call me on {secret_phone} or write to dana.private{i}@gmail.com.\n\nCheers,\nDana\n"),
        ))
    return recs


# --------------------------------------------------------------------------------------------- sanitise
@pytest.mark.parametrize("raw,want", [
    (GOOD, GOOD),
    (f'Instruction: "{GOOD}"', GOOD),
    (f"Here is the instruction:\n\n{GOOD}\n\nLet me know if you need more.", GOOD),
    ("The instruction is to write an email to Sam about the invoice.", "Write an email to Sam about the invoice."),
    ("<think>hmm</think>**write a reply to Jo saying the invoice is attached**", "Write a reply to Jo saying the invoice is attached."),
    ("Write an email to Jo. Say thanks. Mention the stones. Sign off.", "Write an email to Jo. Say thanks."),
    ("<|im_start|>assistant\nReply to Jo with the invoice and say there is no rush<|im_end|>",
     "Reply to Jo with the invoice and say there is no rush."),
])
def test_sanitise_keeps_clean_instructions(raw, want):
    assert sanitise_instruction(raw) == want


@pytest.mark.parametrize("raw", [
    "", None, "   ", "ok", "hi hello thanks cheers dana sam the a",  # not an imperative
    "write write write write write write", "Write $$$ ### 123 456 !!! ??? ***",
    "Dear Sam, thanks for the note about Thursday.",  # an email, not an instruction
])
def test_sanitise_rejects_junk(raw):
    assert sanitise_instruction(raw) is None


def test_sanitise_caps_length():
    long = "Write an email to Sam about " + ", ".join(f"{t} and {v}ing" for t, v in zip(_TOPICS, _VERBS))
    out = sanitise_instruction(long)
    assert out and len(out) <= 281 and out.endswith(".")


def test_detect_api():
    assert detect_api("http://localhost:11434")[0] == "ollama"
    assert detect_api("http://h:8080/api")[0] == "ollama"
    assert detect_api("http://h:8000/v1")[0] == "openai"
    assert detect_api("http://h:8000")[0] == "openai"
    assert detect_api("ollama+http://h:8000") == ("ollama", "http://h:8000")
    with pytest.raises(MailvoiceError, match="http"):
        detect_api("ftp://h")
    with pytest.raises(MailvoiceError, match="--llm-url URL"):
        make_backend()


# --------------------------------------------------------------------------------------------- user turn
def test_generated_instruction_replaces_task_line_keeps_context(tmp_path):
    ex = _ex(reply=True)
    heuristic = ex.chat()["messages"][1]["content"]
    assert heuristic == instruction_for(subject=ex.subject, recipient=ex.recipient, replying_to=ex.input)
    [new], stats = apply_llm_instructions([ex], _Canned(GOOD), InstructionCache(tmp_path / CACHE_FILE))
    user = new.chat()["messages"][1]["content"]
    assert user.startswith(GOOD + "\n\nThe email you are replying to:\n")
    assert user.endswith(ex.input)
    assert new.alpaca()["instruction"] == GOOD and new.alpaca()["input"] == ex.input
    assert stats.generated == 1 and stats.fallback == 0


class _Canned:
    kind, model = "canned", "c"

    def __init__(self, text):
        self.text, self.n = text, 0

    def complete(self, messages):
        self.n += 1
        return self.text


# --------------------------------------------------------------------------------------------- HTTP backends
def test_openai_server_prepare_uses_cache_and_scrubbed_text(tmp_path):
    out = tmp_path / "data"
    opts = dict(min_emails=3, instructions="llm")
    with FakeChatServer() as srv:
        meta = build_dataset(_records(), out, DatasetOptions(**opts, llm_url=srv.url + "/v1"))
        assert srv.calls("/v1/chat/completions") == 12 and srv.calls("/v1/models") == 1  # model from /v1/models
        sent = "\n".join(srv.prompts())
        assert "555" not in sent and "gmail.com" not in sent and "client.example" not in sent
        assert "<PHONE>" in sent and "<EMAIL>" in sent
        body = next(b for _, p, b in srv.requests if p == "/v1/chat/completions")
        assert body["model"] == "fake-model" and body["messages"][0]["role"] == "system"

        assert meta["instructions"]["generated"] == 12 and meta["instructions_fallback"] == 0
        rows = [json.loads(line) for line in (out / "train_alpaca.jsonl").read_text().splitlines()]
        assert rows and all(r["instruction"] == GOOD for r in rows)
        chat = [json.loads(line) for line in (out / "train_chat.jsonl").read_text().splitlines()]
        assert all(c["messages"][1]["content"] == GOOD for c in chat)  # no quoted context: just the instruction
        cache = out / CACHE_FILE
        assert stat.S_IMODE(cache.stat().st_mode) == 0o600
        assert len(cache.read_text().splitlines()) == 12

        # second run: same mail, same backend → not one model call
        meta2 = build_dataset(_records(), out, DatasetOptions(**opts, llm_url=srv.url, llm_model="fake-model"))
        assert srv.calls("/v1/chat/completions") == 12
        assert meta2["instructions"]["cache_hits"] == 12 and meta2["instructions"]["model_calls"] == 0

        # one new email → exactly one more call
        build_dataset(_records(13), out, DatasetOptions(**opts, llm_url=srv.url, llm_model="fake-model"))
        assert srv.calls("/v1/chat/completions") == 13


def test_ollama_server_and_junk_fallback(tmp_path):
    answers = iter([GOOD, "hi hello thanks cheers", GOOD] * 10)
    with FakeChatServer(models=("llama3.2:1b",), reply=lambda m: next(answers)) as srv:
        meta = build_dataset(_records(6), tmp_path / "d", DatasetOptions(min_emails=3, instructions="llm",
                                                                         llm_url=srv.url + "/api"))
        assert srv.calls("/api/chat") == 6 and srv.calls("/api/tags") == 1
        body = next(b for _, p, b in srv.requests if p == "/api/chat")
        assert body["stream"] is False and body["model"] == "llama3.2:1b"
    assert meta["instructions"]["backend"] == "ollama"
    assert meta["instructions_fallback"] == 2 and meta["instructions"]["generated"] == 4
    rows = [json.loads(line) for f in ("train_alpaca.jsonl", "val_alpaca.jsonl")
            for line in (tmp_path / "d" / f).read_text().splitlines()]
    heuristic = [r for r in rows if r["instruction"] != GOOD]
    assert len(heuristic) == 2 and all(r["instruction"].startswith("Write an email to Sam") for r in heuristic)


def test_http_errors_are_one_line_and_bounded(tmp_path):
    with FakeChatServer(fail_with=503) as srv:
        b = OpenAIBackend(srv.url, "fake-model", retries=2)
        with pytest.raises(MailvoiceError) as ei:
            b.complete([{"role": "user", "content": "x"}])
        assert srv.calls("/v1/chat/completions") == 3  # 1 + 2 retries
        assert "HTTP 503" in str(ei.value) and "3 attempts" in str(ei.value) and "\n" not in str(ei.value)
    with FakeChatServer() as srv:
        b = OpenAIBackend(srv.url, "missing-model", retries=2)
        with pytest.raises(MailvoiceError, match="HTTP 404; check --llm-url and --llm-model"):
            b.complete([{"role": "user", "content": "x"}])
        assert srv.calls("/v1/chat/completions") == 1  # a 4xx is not retried
        with pytest.raises(MailvoiceError, match="HTTP 404"):
            OllamaBackend(srv.url, "missing").complete([{"role": "user", "content": "x"}])
    with FakeChatServer(delay=1.5) as srv:
        b = OllamaBackend(srv.url, "fake-model", timeout=0.3, retries=1)
        with pytest.raises(MailvoiceError, match=r"timed out after 0.3s \(2 attempts\)"):
            b.complete([{"role": "user", "content": "x"}])
    with pytest.raises(MailvoiceError, match="could not connect"):
        OpenAIBackend("http://127.0.0.1:9", "m", retries=0).complete([{"role": "user", "content": "x"}])
    with FakeChatServer(models=()) as srv:
        with pytest.raises(MailvoiceError, match="pass --llm-model"):
            OpenAIBackend(srv.url)


def test_error_messages_never_hold_credentials():
    with pytest.raises(MailvoiceError) as ei:
        OpenAIBackend("http://user:hunter2@127.0.0.1:9", "m", retries=0).complete([{"role": "user", "content": "x"}])
    assert "hunter2" not in str(ei.value)


# --------------------------------------------------------------------------------------------- local models
def test_tiny_model_output_is_junk_so_heuristic_fallback(tiny_model, tmp_path):
    exs = [_ex(1), _ex(2, reply=True)]
    cache = InstructionCache(tmp_path / CACHE_FILE)
    backend = LocalBackend(str(tiny_model), max_new_tokens=16)
    out, stats = apply_llm_instructions(exs, backend, cache)
    assert stats.called == 2 and stats.fallback == 2 and stats.generated == 0
    assert [e.instruction for e in out] == [e.instruction for e in exs]
    assert [e.chat() for e in out] == [e.chat() for e in exs]
    again, stats2 = apply_llm_instructions(exs, backend, InstructionCache(tmp_path / CACHE_FILE))
    assert stats2.called == 0 and stats2.cached == 2


def test_messages_for_scrubs_subject():
    ex = _ex(subject="Call me on +1 415 555 0199")
    text = messages_for(ex)[1]["content"]
    assert "555" not in text and "<PHONE>" in text


@pytest.mark.slow
def test_smollm2_writes_real_instructions(smollm2, tmp_path):
    exs = [_ex(1), _ex(2, reply=True, subject="Re: Invoice", recipient="Jo",
                     output="Hi Jo,\n\nOf course! The invoice for the planting is attached. No rush at all.\n\nWarmly,\nDana")]
    out, stats = apply_llm_instructions(exs, LocalBackend("smollm2-135m"), InstructionCache(tmp_path / CACHE_FILE))
    raws = [json.loads(line)["raw"] for line in (tmp_path / CACHE_FILE).read_text().splitlines()]
    assert stats.called == 2 and all(r.strip() for r in raws)
    assert stats.generated >= 1, raws
    for e in out:
        if e.llm_instruction:
            assert len(e.llm_instruction) <= 281 and "\n" not in e.llm_instruction


def test_prepare_on_the_sample_mbox_with_llm(tmp_path):
    """The real prepare path (mbox → records → examples) with the fake server, plus --emailai-format."""
    from mailvoice.dataset.prepare import prepare

    with FakeChatServer() as srv:
        res = prepare(sources=[str(DANA_MBOX)], out_dir=tmp_path / "d", user_emails=[DANA],
                      opts=DatasetOptions(min_emails=5, instructions="llm", llm_url=srv.url, emailai_format=True),
                      notice=lambda m: None)
        n = srv.calls("/v1/chat/completions")
    m = res.metadata
    assert n == m["counts"]["examples"] == m["instructions"]["generated"]
    assert "dana@willowcreek" not in "\n".join(srv.prompts())
    assert m["files"]["train_emailai"] > 0


# --------------------------------------------------------------------------------------------- CLI
def _cli(*args, env=None):
    import subprocess

    return subprocess.run([sys.executable, "-m", "mailvoice", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MAILVOICE_NO_PROGRESS": "1", **(env or {})})


def test_cli_prepare_llm_and_emailai_format(tmp_path):
    out = tmp_path / "d"
    with FakeChatServer(models=("qwen2.5:0.5b",)) as srv:
        r = _cli("prepare", "--user-id", "dana", "--source", str(DANA_MBOX), "--user-email", DANA, "--output", str(out),
                 "--min-emails", "5", "--instructions", "llm", "--llm-url", srv.url + "/api", "--llm-model",
                 "qwen2.5:0.5b", "--emailai-format", "fork", "--workspace", str(tmp_path / "ws"))
        assert r.returncode == 0, r.stderr
        n = srv.calls("/api/chat")
    meta = json.loads((out / "dataset_alpaca.json").read_text())["metadata"]
    assert n == meta["instructions"]["generated"] > 0 and meta["instructions"]["model"] == "qwen2.5:0.5b"
    assert (out / "train_emailai.jsonl").is_file() and (out / "val_emailai.jsonl").is_file()
    assert meta["emailai_format"] == "fork"


@pytest.mark.parametrize("args,msg", [
    (["--instructions", "llm"], "--instructions llm needs --llm-url URL or --llm-model NAME"),
    (["--instructions", "magic"], "Invalid value for '--instructions': Value error, 'magic' is not one of"),
    (["--llm-url", "http://127.0.0.1:9"], "only apply with --instructions llm"),
])
def test_cli_instruction_flag_errors(tmp_path, args, msg):
    r = _cli("prepare", "--user-id", "u", "--source", "x", *args, "--workspace", str(tmp_path / "ws"))
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0 and len(lines) == 1 and msg in lines[0]
    assert not (tmp_path / "ws").exists()


def test_cli_unreachable_endpoint_is_one_line(tmp_path):
    r = _cli("prepare", "--user-id", "dana", "--source", str(DANA_MBOX), "--user-email", DANA, "--min-emails", "5",
             "--instructions", "llm", "--llm-url", "http://127.0.0.1:9/v1", "--llm-model", "m",
             "--workspace", str(tmp_path / "ws"))
    lines = [l for l in r.stderr.splitlines() if l.strip() and "note:" not in l]
    assert r.returncode == 1 and lines[-1].startswith("error: instruction model at http://127.0.0.1:9")
    assert "could not connect" in lines[-1]
