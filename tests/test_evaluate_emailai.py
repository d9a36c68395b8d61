"""Item 2 of the gateway issue: an adapter trained on EmailAI-shaped prompts, and evaluate
scoring the EmailAI format (JSON validity, voice, content, perplexity) beside our own."""

import json

import pytest

from conftest import prepare_sample, sample_prompts, train_tiny

from mailvoice.cli import main
from mailvoice.dataset.emailai_format import VARIANTS, parse_emailai_request, parse_reply
from mailvoice.workspace import read_jsonl


@pytest.fixture(scope="module")
def emailai_run(tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evalemailai")
    data = prepare_sample(tmp, emailai_format=True).out_dir
    run = train_tiny(tiny_model, data, tmp / "run", train_file="train_emailai.jsonl", val_file="val_emailai.jsonl")
    return {"tmp": tmp, "data": data, "run": run}


def test_training_rows_are_emailai_requests_the_gateway_recognises(emailai_run):
    rows = read_jsonl(emailai_run["data"] / "train_emailai.jsonl")
    # the fork's prompt by default, its system text as EmailAI's Ollama provider sends it
    assert rows and all(r["messages"][0]["content"] == VARIANTS["fork"].system for r in rows)
    for r in rows[:10]:
        assert parse_emailai_request(r["messages"][:2]) is not None
        assert isinstance(parse_reply(r["messages"][2]["content"]), str)
    assert emailai_run["run"].summary["config"]["train_file"] == "train_emailai.jsonl"


def test_evaluate_scores_the_emailai_format(emailai_run):
    tmp, data, run = emailai_run["tmp"], emailai_run["data"], emailai_run["run"]
    prompts = sample_prompts(tmp / "prompts.json", 1)
    out = tmp / "eval" / "evaluation-results.json"
    rc = main(["evaluate", "--model", str(run.run_dir), "--test-data", str(prompts), "--output", str(out),
               "--data", str(data), "--report", str(tmp / "eval" / "report.html"), "--max-new-tokens", "8",
               "--max-val-prompts", "2", "--emailai-prompts", "2"])
    assert rc in (0, 3)
    m = json.loads((tmp / "eval" / "metrics.json").read_text())
    e = m["emailai"]
    assert e["rows"] == 2 and e["trained_on"] == "train_emailai.jsonl"
    for side in ("tuned", "base"):
        assert 0.0 <= e[side]["json_valid"] <= 1.0
        assert set(e[side]) >= {"p_user", "voice_score", "content"}
        assert e["perplexity"][side] > 1.0
    assert e["perplexity"]["tuned"] != e["perplexity"]["base"]  # the adapter changed something
    assert not any(k.startswith("emailai_") for k in m["voice"]["scores"])
    assert 'id="emailai"' in (tmp / "eval" / "report.html").read_text()

    rc = main(["evaluate", "--model", str(run.run_dir), "--test-data", str(prompts), "--output", str(out),
               "--data", str(data), "--max-new-tokens", "4", "--max-val-prompts", "1", "--emailai-prompts", "0"])
    assert json.loads((tmp / "eval" / "metrics.json").read_text())["emailai"] is None
