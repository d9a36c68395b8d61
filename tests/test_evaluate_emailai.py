"""Item 2 of the gateway issue: an adapter trained on EmailAI-shaped prompts, and evaluate
scoring the EmailAI format (JSON validity, voice, content, perplexity) beside our own."""

import json

import pytest

from conftest import DANA, ROOT, trimmed_mbox

from mailvoice.cli import main
from mailvoice.dataset.emailai_format import SYSTEM_PROMPT, parse_emailai_request, parse_reply
from mailvoice.workspace import read_jsonl


@pytest.fixture(scope="module")
def emailai_run(tiny_model, tmp_path_factory):
    from mailvoice.dataset.build import DatasetOptions
    from mailvoice.dataset.prepare import prepare
    from mailvoice.train.config import validate_config
    from mailvoice.train.run import train

    tmp = tmp_path_factory.mktemp("evalemailai")
    trimmed_mbox(tmp / "dana.mbox", 60)
    data = tmp / "data"
    prepare(sources=[str(tmp / "dana.mbox")], out_dir=data, user_emails=[DANA],
            opts=DatasetOptions(min_emails=20, emailai_format=True), notice=lambda m: None)
    cfg = validate_config({"base_model": str(tiny_model), "max_steps": 1, "per_device_train_batch_size": 4,
                           "learning_rate": 5e-3, "lora_dropout": 0.0, "report_to": [],
                           "train_file": "train_emailai.jsonl", "val_file": "val_emailai.jsonl"})
    run = train(cfg, data_dir=data, run_dir=tmp / "run", notice=lambda m: None)
    return {"tmp": tmp, "data": data, "run": run}


def test_training_rows_are_emailai_requests_the_gateway_recognises(emailai_run):
    rows = read_jsonl(emailai_run["data"] / "train_emailai.jsonl")
    assert rows and all(r["messages"][0]["content"] == SYSTEM_PROMPT for r in rows)
    for r in rows[:10]:
        assert parse_emailai_request(r["messages"][:2]) is not None
        assert isinstance(parse_reply(r["messages"][2]["content"]), str)
    assert emailai_run["run"].summary["config"]["train_file"] == "train_emailai.jsonl"


def test_evaluate_scores_the_emailai_format(emailai_run):
    tmp, data, run = emailai_run["tmp"], emailai_run["data"], emailai_run["run"]
    prompts = tmp / "prompts.json"
    prompts.write_text(json.dumps(json.loads((ROOT / "data-samples" / "test-prompts.json").read_text())[:1]))
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
