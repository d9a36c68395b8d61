"""``mailvoice evaluate`` end to end on the tiny random Llama: files, report, canaries, the gate."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import prepare_sample, sample_prompts, train_tiny

from mailvoice.cli import main


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render_dom(html_path: Path, tmp: Path, screenshot: Path | None = None) -> str:
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp / 'chrome-profile'}"]
    if screenshot:
        subprocess.run(args + [f"--screenshot={screenshot}", "--window-size=1100,4000", html_path.resolve().as_uri()],
                       capture_output=True, timeout=120)
    out = subprocess.run(args + ["--dump-dom", html_path.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    return out.stdout


@pytest.fixture(scope="module")
def tiny_eval(tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaltiny")
    data = prepare_sample(tmp, plant_canaries=1, canary_repeats=2).out_dir
    run = train_tiny(tiny_model, data, tmp / "run", steps=2)
    prompts = sample_prompts(tmp / "prompts.json", 2)
    out = tmp / "eval" / "evaluation-results.json"
    rc = main(["evaluate", "--model", str(run.run_dir), "--test-data", str(prompts), "--output", str(out),
               "--data", str(data), "--report", str(tmp / "eval" / "report.html"), "--max-new-tokens", "12",
               "--max-val-prompts", "2"])
    return {"tmp": tmp, "run": run, "data": data, "prompts": prompts, "out": out, "rc": rc}


def test_results_metrics_and_evaluation_record(tiny_eval):
    assert tiny_eval["rc"] == 0
    results = json.loads(tiny_eval["out"].read_text())
    assert len(results) == 4 and [r["source"] for r in results] == ["test-prompts"] * 2 + ["val"] * 2
    for r in results:
        assert {"prompt", "generated", "base_generated", "p_user", "base_p_user"} <= set(r)
    assert "reference" in results[-1]
    m = json.loads(tiny_eval["out"].with_name("metrics.json").read_text())
    for key in ("perplexity", "voice", "delta", "features", "content", "novelty", "canaries", "pii", "gate"):
        assert key in m, key
    # the harder measures: real-vs-generated discriminator (2 val pairs: too few, said so), habit ratio, stop rate
    assert m["discriminator"]["tuned"]["auc"] is None and "need 5" in m["discriminator"]["tuned"]["reason"]
    assert set(m["features"]["habit_ratio"]) == {"other_authors", "base", "tuned"}
    assert 0 <= m["stop_rate"]["tuned"] <= 1 and "above_ceiling" in m["voice"]
    assert 0 <= m["stop_rate"]["user_heldout"] <= 1  # the yardstick: the user's replies that fit the limit
    assert 'id="real"' in tiny_eval["out"].with_name("report.html").read_text()
    nc = m["notes"]["tuned"]  # the second bundled test prompt carries three typed notes
    assert nc["prompts"] >= 1 and nc["items"] >= 3 and 0 <= nc["coverage"] <= 1
    p = m["perplexity"]
    assert p["user"]["base"] > 0 and p["control"]["base"] > 0 and p["user_specific_gain"] is not None
    assert m["control"]["heldout"] >= 10 and m["control"]["source"].endswith("contrast-sent.mbox")
    v = m["voice"]
    assert v["calibrated"] and v["ceiling"] - v["floor"] >= 0.3, v["reason"]
    c = m["canaries"]
    assert c["planted"] == 1 and c["canaries"][0]["candidates"] == 100
    assert 0 <= c["canaries"][0]["tuned"]["exposure"] <= c["canaries"][0]["max_exposure"]
    assert m["gate"]["passed"]
    ev = json.loads((tiny_eval["run"].final_dir / "evaluation.json").read_text())
    assert ev["gate"]["passed"] and ev["summary"]["ceiling"] == v["ceiling"]


def test_gate_exits_3_and_deploy_require_eval_refuses(tiny_eval, capsys, tmp_path):
    from mailvoice.artifacts import Adapter

    run = tiny_eval["run"]
    assert Adapter.open(run.run_dir).require_gate()["gate"]["passed"]
    out = tmp_path / "gate" / "evaluation-results.json"
    rc = main(["evaluate", "--model", str(run.final_dir), "--test-data", str(tiny_eval["prompts"]), "--output", str(out),
               "--data", str(tiny_eval["data"]), "--max-new-tokens", "8", "--max-val-prompts", "0",
               "--max-canary-leaks", "0", "--min-novelty", "1.01"])
    err = capsys.readouterr().err
    assert rc == 3 and "evaluation gate failed" in err and "--min-novelty 1.01" in err
    assert out.is_file() and json.loads(out.with_name("metrics.json").read_text())["gate"]["passed"] is False
    rc = main(["deploy", "--model", str(run.final_dir), "--user-id", "dana", "--require-eval", "--dry-run",
               "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert rc == 3 and "refusing to deploy" in err and "--min-novelty" in err


def test_missing_test_data_is_a_clear_error(tiny_eval, capsys, tmp_path):
    rc = main(["evaluate", "--model", str(tiny_eval["run"].final_dir), "--test-data", str(tmp_path / "nope.json"),
               "--output", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 1 and "--test-data" in err and "no such file" in err


def test_gate_failure_is_its_own_error_carrying_the_result(tiny_eval, tmp_path):
    """The library call: ``GateFailed`` (exit 3) with the whole result; ``fail_on_gate=False`` returns it."""
    from mailvoice.errors import GateFailed, MailvoiceError
    from mailvoice.evaluate.generate import GenOptions
    from mailvoice.evaluate.run import EvalOptions, evaluate

    out = tmp_path / "lib" / "evaluation-results.json"
    opts = EvalOptions(data_dir=tiny_eval["data"], gen=GenOptions(max_new_tokens=8), max_val_prompts=0,
                       max_control_rows=10, compare_rag=False, min_novelty=1.01)
    with pytest.raises(GateFailed) as e:
        evaluate(tiny_eval["run"].final_dir, tiny_eval["prompts"], out, opts)
    assert isinstance(e.value, MailvoiceError) and e.value.exit_code == 3
    assert e.value.gate["passed"] is False and e.value.result.metrics["gate"] == e.value.gate
    assert "evaluation gate failed" in str(e.value) and "--min-novelty 1.01" in str(e.value)
    assert json.loads(out.with_name("metrics.json").read_text())["gate"] == e.value.gate  # written before raising
    opts.fail_on_gate = False
    res = evaluate(tiny_eval["run"].final_dir, tiny_eval["prompts"], out, opts)
    assert res.gate["passed"] is False and res.gate["thresholds"]["min_novelty"] == 1.01



def test_best_of_n_keeps_one_of_the_candidates_and_says_what_it_cost(tiny_eval, capsys, tmp_path):
    """``--candidates 3``: candidate 0 of each prompt is the one-draft run's draft (same row seed),
    so every prompt whose first draft was kept reads exactly as in the N = 1 run."""
    out = tmp_path / "best" / "evaluation-results.json"
    rc = main(["evaluate", "--model", str(tiny_eval["run"].run_dir), "--test-data", str(tiny_eval["prompts"]),
               "--output", str(out), "--data", str(tiny_eval["data"]), "--report", str(out.with_name("report.html")),
               "--max-new-tokens", "12", "--max-val-prompts", "2", "--candidates", "3"])
    assert rc == 0
    m = json.loads(out.with_name("metrics.json").read_text())
    tm = m["timing"]
    assert tm["candidates"] == 3 and m["generation"]["candidates"] == 3 and tm["prompts"] == 4
    assert tm["tuned_s"] > 0 and tm["base_s"] > 0 and tm["rerank_s"] >= 0 and 0 <= tm["not_first_share"] <= 1
    one = [r["generated"] for r in json.loads(tiny_eval["out"].read_text())]
    best = json.loads(out.read_text())
    same = sum(b["generated"] == o for b, o in zip(best, one, strict=True))
    assert same >= round((1 - tm["not_first_share"]) * 4)
    assert [b["base_generated"] for b in best] == [r["base_generated"] for r in json.loads(tiny_eval["out"].read_text())]
    assert "best of 3" in capsys.readouterr().out
    assert "best of 3" in out.with_name("report.html").read_text()


def test_best_of_n_needs_training_replies_before_any_generation(tiny_eval, capsys, tmp_path):
    empty = tmp_path / "nodata"
    empty.mkdir()
    rc = main(["evaluate", "--model", str(tiny_eval["run"].final_dir), "--test-data", str(tiny_eval["prompts"]),
               "--output", str(tmp_path / "r.json"), "--data", str(empty), "--candidates", "2"])
    err = capsys.readouterr().err
    assert rc == 1 and "--candidates needs" in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.skipif(not chromium(), reason="chromium not installed (apt-get install chromium)")
def test_report_is_self_contained_and_renders_in_headless_chromium(tiny_eval):
    report = tiny_eval["out"].with_name("report.html")
    html = report.read_text()
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    dom = render_dom(report, tiny_eval["tmp"])
    for anchor in ('id="verdict"', 'id="voice"', 'id="real"', 'id="perplexity"', 'id="features"', 'id="privacy"',
                   'id="gate"', 'id="generations"'):
        assert anchor in dom, anchor
    assert dom.count('src="data:image/png;base64,') >= 3
    assert "Base model" in dom and "Tuned model" in dom and "canaries" in dom
