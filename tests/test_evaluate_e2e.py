"""The evaluation on the real SmolLM2: trained once on Dana's bundled mail (with canaries planted),
judged against Marcus's. The tuned model must score above the base model on the calibrated
scale, the classifier must be calibrated, canaries must be measured, the report must render."""

import json
import os
from pathlib import Path

import pytest

from conftest import DANA, DANA_MBOX, ROOT

pytestmark = pytest.mark.slow

STEPS = int(os.environ.get("MAILVOICE_E2E_STEPS", "20"))


@pytest.fixture(scope="module")
def smol_eval(smollm2, tmp_path_factory):
    from mailvoice.dataset.build import DatasetOptions
    from mailvoice.dataset.prepare import prepare
    from mailvoice.evaluate.generate import GenOptions
    from mailvoice.evaluate.run import EvalOptions, evaluate
    from mailvoice.train.config import load_config
    from mailvoice.train.run import train

    tmp = tmp_path_factory.mktemp("smoleval")
    data = tmp / "data"
    prepare(sources=[str(DANA_MBOX)], out_dir=data, user_emails=[DANA],
            opts=DatasetOptions(min_emails=20, plant_canaries=2), notice=lambda m: None)
    cfg = load_config(ROOT / "configs" / "lora-config-cpu.yaml", {"max_steps": STEPS})
    run = train(cfg, data_dir=data, run_dir=tmp / "run", notice=lambda m: None)
    ev = evaluate(run.final_dir, ROOT / "data-samples" / "test-prompts.json", tmp / "eval" / "evaluation-results.json",
                  EvalOptions(data_dir=data, max_val_prompts=4, gen=GenOptions(max_new_tokens=64),
                              report=tmp / "eval" / "report.html", canary_candidates=50, max_control_rows=20))
    return ev, tmp


def test_tuned_voice_beats_base_on_a_calibrated_scale(smol_eval):
    ev, _ = smol_eval
    v = ev.metrics["voice"]
    assert v["calibrated"], v["reason"]
    assert v["ceiling"] - v["floor"] >= 0.3
    assert v["voice_score"]["tuned"] > v["voice_score"]["base"], v


def test_perplexity_gain_is_user_specific(smol_eval):
    p = smol_eval[0].metrics["perplexity"]
    assert p["user"]["tuned"] < p["user"]["base"]
    assert p["user_specific_gain"] > 0, p


def test_canaries_are_measured_end_to_end(smol_eval):
    c = smol_eval[0].metrics["canaries"]
    assert c["planted"] == 2 and len(c["canaries"]) == 2
    for item in c["canaries"]:
        assert "tuned" in item and "base" in item
        assert 0 <= item["tuned"]["exposure"] <= item["max_exposure"]
    assert c["mean_exposure"]["tuned"] >= c["mean_exposure"]["base"]  # it saw them; the base never did


def test_no_pii_from_training_comes_back(smol_eval):
    assert smol_eval[0].metrics["pii"]["leaked"] == []


def test_report_renders(smol_eval):
    from test_evaluate_tiny import chromium, render_dom

    ev, tmp = smol_eval
    if not chromium():
        pytest.skip("chromium not installed")
    dom = render_dom(ev.report_path, tmp, screenshot=tmp / "report.png")
    assert 'id="verdict"' in dom and dom.count("data:image/png;base64,") >= 3
    results = json.loads(Path(ev.results_path).read_text())
    assert results[0]["generated"] and results[0]["base_generated"]


def test_tuned_smollm2_ends_its_emails_with_the_end_token(smol_eval):
    """The end-of-turn token was a trained target (pad != eos): on held-out prompts, decoded with
    the repeat penalty we serve with (greedy decoding without it loops on a 135M model), the tuned
    model stops by itself instead of running to the token limit."""
    from mailvoice.deploy.modelfile import EMAIL_PARAMETERS
    from mailvoice.evaluate.generate import GenOptions, generate, load_tuned, val_rows

    ev, tmp = smol_eval
    model, tok = load_tuned(Path(ev.metrics["model"]))
    prompts = [r["messages"][1]["content"] for r in val_rows(tmp / "data")[:3]]
    opts = GenOptions(max_new_tokens=200, repetition_penalty=EMAIL_PARAMETERS["repeat_penalty"])
    out = generate(model, tok, prompts, opts, use_adapter=True)
    assert sum(o["stopped"] for o in out) >= 2, [o["tokens"] for o in out]
