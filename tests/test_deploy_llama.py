"""Deploy with the real llama.cpp tools on the tiny model: equivalence with HF+PEFT by token ids,
the full deploy against the Ollama test server (backed by llama-server), adapter mode and its
fallback, the probe, a full disk, and `mailvoice serve` with two users.

Needs `mailvoice tools install` (the test bootstrap runs it); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import httpx
import pytest

from mailvoice.chat import CHATML, SYSTEM_PROMPT, instruction_for
from mailvoice.cli import main
from mailvoice.deploy import gguf
from mailvoice.deploy.llama_server import LlamaServer
from mailvoice.deploy.modelfile import serving_template
from mailvoice.errors import MailvoiceError
from mailvoice.tools import BINARIES, find_toolchain

sys.path.insert(0, str(Path(__file__).parent))
from fakes.gotemplate import ollama_prompt  # noqa: E402
from fakes.ollama_server import FakeOllama  # noqa: E402
from test_deploy import make_random_adapter  # noqa: E402

TC = find_toolchain()
pytestmark = pytest.mark.skipif(
    any(b not in TC.binaries for b in BINARIES) or TC.tree is None,
    reason="llama.cpp tools not built: run `mailvoice tools install` (or set LLAMA_CPP_DIR)",
)
PROMPT = instruction_for(subject="Quick check-in 7", recipient="a colleague")
N = 24


def train_stopping_adapter(base: Path, root: Path, reply: str, steps: int = 40) -> Path:
    """A real training run on the tiny model that learns a reply and its end token."""
    from mailvoice.train.config import validate_config
    from mailvoice.train.run import train

    d = root / "data"
    d.mkdir(parents=True)
    subjects = ["visit", "Quick check-in", "plan", "order"]
    rows = [{"messages": [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": instruction_for(subject=f"{subjects[i % 4]} {i}", recipient=["Sam", "a colleague"][i % 2])},
        {"role": "assistant", "content": reply.format(i=i % 5)}]} for i in range(24)]
    (d / "train_chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:-4]))
    (d / "val_chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[-4:]))
    cfg = validate_config({"base_model": str(base), "max_steps": steps, "per_device_train_batch_size": 4, "learning_rate": 1e-2,
                           "report_to": [], "lora_dropout": 0.0, "save_steps": 1000})
    return train(cfg, data_dir=d, run_dir=root / "run", notice=lambda m: None).final_dir


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    return train_stopping_adapter(tiny_model, tmp_path_factory.mktemp("train"), "Hi Sam! quick thought: monday {i}. Cheers,\nDana")


def hf_greedy(base: Path, adapter: Path | None, prompt_ids: list[int], n: int = N) -> list[int]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    end = model.config.eos_token_id
    ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, do_sample=False, eos_token_id=end, pad_token_id=end)
    return strip_end(out[0, len(prompt_ids):].tolist())


def llama_greedy(model: Path, loras: list[Path], prompt_ids: list[int], n: int = N, lora_id: int | None = 0) -> list[int]:
    with LlamaServer(TC.bin("llama-server"), model, loras=loras, ctx=512) as srv:
        lora = [{"id": i, "scale": 1.0 if i == lora_id else 0.0} for i in range(len(loras))] if loras else None
        r = srv.complete(prompt_ids, n_predict=n, lora=lora)
        return strip_end(r["tokens"])


def strip_end(ids: list[int], end: int = 2) -> list[int]:
    """HF returns the end token it stopped on; llama-server stops on it without returning it."""
    return ids[:-1] if ids and ids[-1] == end else ids


@pytest.fixture(scope="module")
def ggufs(tiny_model, adapter, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    base = gguf.resolve_base(adapter)
    merged_dir = gguf.merge_adapter(adapter, base, out / "merged-hf")
    return {
        "base_f32": gguf.convert_hf(TC, tiny_model, out / "base-f32.gguf", "f32"),
        "base_f16": gguf.convert_hf(TC, tiny_model, out / "base-f16.gguf", "f16"),
        "lora_f32": gguf.convert_lora(TC, adapter, base, out / "lora-f32.gguf", "f32"),
        "lora_f16": gguf.convert_lora(TC, adapter, base, out / "lora-f16.gguf", "f16"),
        "merged_f32": gguf.convert_hf(TC, merged_dir, out / "merged-f32.gguf", "f32"),
    }


def prompt_ids(folder: Path) -> list[int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    return tok(CHATML.render_prompt(PROMPT), add_special_tokens=False).input_ids


def test_llama_cpp_tokenizes_the_served_prompt_to_the_training_ids(tiny_model, ggufs):
    served = ollama_prompt(serving_template(CHATML), CHATML, PROMPT)
    with LlamaServer(TC.bin("llama-server"), ggufs["merged_f32"], ctx=512) as srv:
        assert srv.tokenize(served, add_special=True) == prompt_ids(tiny_model)  # BOS handling included
        for s in CHATML.stop:
            assert len(srv.tokenize(s, add_special=False)) == 1


def test_greedy_ids_match_hf_peft_for_lora_and_merged_gguf(tiny_model, adapter, ggufs):
    ids = prompt_ids(tiny_model)
    want = hf_greedy(tiny_model, adapter, ids)
    assert 0 < len(want) < N  # the trained adapter stops (on <|im_end|>) within N tokens
    assert llama_greedy(ggufs["base_f32"], [ggufs["lora_f32"]], ids) == want
    assert llama_greedy(ggufs["base_f16"], [ggufs["lora_f16"]], ids) == want
    assert llama_greedy(ggufs["merged_f32"], [], ids) == want
    # and the LoRA matters: the base alone says something else
    assert llama_greedy(ggufs["base_f32"], [], ids) == hf_greedy(tiny_model, None, ids) != want


# ------------------------------------------------------------------------------- deploy ↔ Ollama test server
@pytest.fixture
def ollama(tmp_path):
    with FakeOllama(tmp_path / "ollama", TC.bin("llama-server"), version="0.30.4") as f:
        yield f


def _hf_reply(base, adapter) -> str:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(adapter))
    return tok.decode(hf_greedy(base, adapter, prompt_ids(base), n=64), skip_special_tokens=True)


def test_deploy_merged_creates_verifies_registers_and_wires_emailai(tiny_model, adapter, ollama, workspace, tmp_path, capsys):
    env = tmp_path / "emailai.env"
    env.write_text("DATABASE_URL=postgres://keep\n")
    rc = main(["deploy", "--model", str(adapter.parent), "--user-id", "Dana", "--merge", "--ollama-url", ollama.url,
               "--env-file", str(env), "--quantize", "f32"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "answered the probe and stopped" in " ".join(out.split())
    # the gateway set-up by default: EmailAI → the gateway, the base model as its one model
    assert "NEXT_PUBLIC_OLLAMA_MODEL=emailai-dana" not in out and "OLLAMA_BASE_URL=http://127.0.0.1:11435/api" in out
    assert f"mailvoice gateway --upstream {ollama.url}" in out
    assert "OLLAMA_BASE_URL=http://127.0.0.1:11435/api" in env.read_text() and env.read_text().startswith("DATABASE_URL=postgres://keep\n")
    m = ollama.models["emailai-dana:latest"]
    assert m["template"] == serving_template(CHATML) and m["system"] == SYSTEM_PROMPT
    assert m["parameters"]["stop"] == list(CHATML.stop) and m["parameters"]["temperature"] == 0.7
    order = [p for _, p in ollama.requests if p.startswith("/api/")]
    assert order[0] == "/api/version" and order.index("/api/create") > max(i for i, p in enumerate(order) if p.startswith("/api/blobs"))
    assert "/api/generate" in order
    rec = json.loads((Path(workspace) / "Dana" / "models" / "emailai-dana" / "deploy.json").read_text())
    assert rec["mode"] == "merged" and rec["probe"]["done_reason"] == "stop" and rec["adapter_digest"].startswith("sha256:")
    assert rec["base_hf_id"] and rec["deployed_at"] and rec["gguf_bytes"] > 0
    folder = Path(workspace) / "Dana" / "models" / "emailai-dana"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir() if p.is_file())
    # what EmailAI gets through Ollama's /api/chat is what HF + PEFT writes (greedy)
    r = httpx.post(ollama.url + "/api/chat", json={"model": "emailai-dana", "stream": False, "options": {"temperature": 0, "num_predict": 64, "repeat_penalty": 1.0},
                                                   "messages": [{"role": "user", "content": PROMPT}]}, timeout=120).json()
    assert r["done_reason"] == "stop" and r["message"]["content"] == _hf_reply(tiny_model, adapter)


def test_deploy_default_q4_k_m_and_dry_run_modelfile(adapter, ollama, workspace, capsys):
    assert main(["deploy", "--model", str(adapter), "--user-id", "q1", "--dry-run"]) == 0
    folder = Path(workspace) / "q1" / "models" / "emailai-q1"
    g = folder / "emailai-q1-q4_K_M.gguf"
    assert g.is_file() and gguf.gguf_file_type(g) == "Q4_K_M"
    text = (folder / "Modelfile").read_text()
    assert text.startswith(f"FROM {g.absolute()}\n") and not (folder / "deploy.json").exists()
    assert not ollama.requests  # a dry run touches no server


def test_adapter_mode_uses_the_fp_base_tag_and_falls_back_when_refused(tiny_model, adapter, ggufs, tmp_path, workspace, monkeypatch, capsys):
    from mailvoice.deploy import modelfile
    from mailvoice.models import hf_id_of

    monkeypatch.setitem(modelfile.OLLAMA_BASE_TAGS, hf_id_of(str(tiny_model)), "tinybase:f32")
    with FakeOllama(tmp_path / "o1", TC.bin("llama-server"), version="0.31.0") as o:
        o.add_model("tinybase:f32", ggufs["base_f32"], template=serving_template(CHATML), system=SYSTEM_PROMPT)
        assert main(["deploy", "--model", str(adapter), "--user-id", "ad1", "--adapter", "--ollama-url", o.url]) == 0
        m = o.models["emailai-ad1:latest"]
        assert m["adapter_digest"] and m["parent"] == "tinybase:f32"
        r = httpx.post(o.url + "/api/generate", json={"model": "emailai-ad1", "prompt": PROMPT, "stream": False,
                                                      "options": {"temperature": 0, "num_predict": 64, "repeat_penalty": 1.0}}, timeout=120).json()
        assert r["response"] == _hf_reply(tiny_model, adapter)
    capsys.readouterr()
    with FakeOllama(tmp_path / "o2", TC.bin("llama-server"), version="0.34.1", refuse_adapters=True) as o:
        o.add_model("tinybase:f32", ggufs["base_f32"])
        assert main(["deploy", "--model", str(adapter), "--user-id", "ad2", "--adapter", "--ollama-url", o.url, "--quantize", "q8_0"]) == 0
        err = capsys.readouterr().err
        assert "refused the adapter model" in err and "deploying merged instead" in err
        assert o.models["emailai-ad2:latest"]["adapter_digest"] is None
        assert json.loads((Path(workspace) / "ad2" / "models" / "emailai-ad2" / "deploy.json").read_text())["mode"] == "merged"


def test_a_model_that_does_not_stop_is_removed_and_not_registered(adapter, ollama, workspace, monkeypatch, capsys):
    from mailvoice.deploy import pipeline

    monkeypatch.setattr(pipeline, "PROBE_TOKENS", 3)  # the learned reply is longer: no stop within 3
    assert main(["deploy", "--model", str(adapter), "--user-id", "s1", "--ollama-url", ollama.url, "--quantize", "f16"]) == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "did not stop within 3 tokens" in errors[0]
    assert "emailai-s1:latest" not in ollama.models
    assert not (Path(workspace) / "s1" / "models" / "emailai-s1" / "deploy.json").exists()


def test_disk_full_during_conversion_is_one_line_and_leaves_no_gguf(tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    link = out / ".full.part"

    def full(final):
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/full")  # every write: ENOSPC
        return link

    monkeypatch.setattr(gguf, "_tmp", full)
    with pytest.raises(MailvoiceError, match="disk full while converting") as e:
        gguf.convert_hf(TC, tiny_model, out / "m.gguf", "f32")
    assert "\n" not in str(e.value)
    assert not (out / "m.gguf").exists() and not link.is_symlink()


# ------------------------------------------------------------------------------- multi-user: one base, many LoRAs
def test_serve_two_users_each_get_their_own_adapter(tiny_model, adapter, ggufs, tmp_path):
    from mailvoice.deploy.serve import MultiUserServer

    other = make_random_adapter(tiny_model, tmp_path / "other", seed=3)
    other_lora = gguf.convert_lora(TC, other, gguf.resolve_base(other), tmp_path / "other.gguf", "f32")
    ids = prompt_ids(tiny_model)
    want = {"emailai-a": hf_greedy(tiny_model, adapter, ids), "emailai-b": hf_greedy(tiny_model, other, ids)}
    assert want["emailai-a"] != want["emailai-b"]
    with MultiUserServer(ggufs["base_f32"], {"emailai-a": ggufs["lora_f32"], "emailai-b": other_lora}, port=0,
                         llama_server=TC.bin("llama-server")) as srv:
        assert {m["id"] for m in httpx.get(srv.url + "/v1/models").json()["data"]} == set(want)
        for name in ("emailai-a", "emailai-b", "emailai-a"):  # interleaved: no state leaks across users
            r = httpx.post(srv.url + "/v1/chat/completions", timeout=120, json={
                "model": name, "temperature": 0, "max_tokens": N, "messages": [{"role": "user", "content": PROMPT}]}).json()
            assert strip_end(r["mailvoice"]["tokens"]) == want[name], name
        bad = httpx.post(srv.url + "/v1/chat/completions", json={"model": "emailai-zz", "messages": [{"role": "user", "content": "x"}]})
        assert bad.status_code == 404 and bad.json()["error"]["code"] == "model_not_found"


def test_demo_served_draft_answers_with_and_without_the_lora(tiny_model, tmp_path):
    """The demo's last step: one llama-server, the user's GGUF LoRA on (scale 1) and off (scale 0)."""
    from mailvoice.demo import served_draft

    adapter = make_random_adapter(tiny_model, tmp_path / "adapter", scale=4.0)
    lora = gguf.convert_lora(TC, adapter, gguf.resolve_base(adapter), tmp_path / "voice-lora.gguf")
    out = served_draft(lora, str(tiny_model), "chatml", PROMPT, root=tmp_path / "ws", max_tokens=12)
    assert isinstance(out["tuned"], str) and isinstance(out["base"], str)
    assert out["tuned"] != out["base"]  # a random LoRA at scale 4 changes the answer (same seed, same sampling)
    assert f"--lora {lora}" in out["command"] and Path(out["base_gguf"]).is_file()
    assert out["command"].split()[0].endswith("llama-server")
