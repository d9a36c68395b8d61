"""Training sized in epochs over the user's rows, the planned steps announced, a wall-time budget
that cuts the run and says so (tiny random Llama for the real run; a fake clock for the maths)."""

import json
from pathlib import Path

import pytest

from mailvoice.chat import SYSTEM_PROMPT
from mailvoice.cli import main
from mailvoice.errors import MailvoiceError
from mailvoice.train.config import load_config, validate_config
from mailvoice.train.run import StepClock, parse_duration, plan_text, train


def _data(d: Path, n=24) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    rows = [{"messages": [{"role": "system", "content": SYSTEM_PROMPT},
                          {"role": "user", "content": f"Write an email to Sam.\nSubject: visit {i}"},
                          {"role": "assistant", "content": f"Hi Sam! monday {i % 5}. Cheers,\nDana"}]} for i in range(n)]
    (d / "train_chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:-4]))
    (d / "val_chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[-4:]))
    return d


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_durations_parse_and_bad_ones_are_clear():
    assert parse_duration("600") == 600 and parse_duration("45m") == 2700 and parse_duration("1.5h") == 5400
    for bad in ("soon", "-5", "0", "10d", ""):
        with pytest.raises(MailvoiceError, match="--time-budget"):
            parse_duration(bad)


def test_plan_names_epochs_rows_and_budget():
    assert plan_text(150, 4, 3, -1, 113, None) == "planned 113 steps: 3 epochs × 150 rows / 4 rows per step; ETA after the first steps"
    assert "max_steps 40 (≈ 1.1 epochs over 150 rows)" in plan_text(150, 4, 3, 40, 40, 600)
    assert "wall-time budget 600s" in plan_text(150, 4, 3, 40, 40, 600)


def test_step_clock_eta_and_budget_cut():
    clk = FakeClock()
    c = StepClock(10, 25.0, now=clk)
    for step in range(1, 11):
        c.begin(step - 1)
        clk.t += 5.0 if step == 1 else 3.0  # the first step includes warm-up
        eta = c.end(step)
        if step == 1:
            assert eta is None
        if step == 2:
            assert eta.startswith("3.0s per step: ETA 0.4 min for the remaining 8 steps") and "cut it at about step 7" in eta
        if c.out_of_time(step):
            break
    assert step == 7 and clk.t == 23.0  # 23s + one more 3s step would pass 25s
    r = c.report(step, steps_per_epoch=5)
    assert r["cut"] and r["steps_cut"] == 3 and r["epochs_done"] == 1.4
    assert r["message"] == "time budget 25s reached: stopped at step 7 of 10 (1.40 of 2.00 epochs); 3 steps cut"
    free = StepClock(10, None, now=clk)
    free.begin(0)
    assert not free.out_of_time(1) and free.report(1, 5) is None


def test_run_is_sized_in_epochs_and_a_budget_cuts_it(tiny_model, tmp_path):
    data = _data(tmp_path / "data")  # 20 train rows, 4 per step: 5 steps per epoch
    cfg = validate_config({"base_model": str(tiny_model), "num_train_epochs": 2, "per_device_train_batch_size": 4,
                           "learning_rate": 5e-3, "report_to": [], "lora_dropout": 0.0})
    notes = []
    full = train(cfg, data_dir=data, run_dir=tmp_path / "full", notice=notes.append)
    assert full.summary["planned_steps"] == 10 == full.summary["steps"] and full.summary["time_budget"] is None
    assert notes[0] == "planned 10 steps: 2 epochs × 20 rows / 4 rows per step; ETA after the first steps"
    assert any("per step: ETA" in n for n in notes)
    notes.clear()
    cut = train(cfg, data_dir=data, run_dir=tmp_path / "cut", notice=notes.append, time_budget_s=1e-6)
    tb = cut.summary["time_budget"]
    assert cut.summary["steps"] == 1 and tb["cut"] and tb["steps_cut"] == 9, tb  # stops after the first step
    assert any(n.startswith("time budget 0s reached: stopped at step 1 of 10") for n in notes)
    assert (cut.final_dir / "adapter_config.json").is_file()


def test_cpu_preset_trains_three_epochs_and_cli_rejects_a_bad_budget(tmp_path, capsys):
    cpu = load_config(Path(__file__).resolve().parents[1] / "configs" / "lora-config-cpu.yaml")
    assert cpu.max_steps <= 0 and cpu.num_train_epochs == 3
    rc = main(["train", "--data", str(_data(tmp_path / "d")), "--output", str(tmp_path / "run"), "--time-budget", "soon"])
    err = capsys.readouterr().err
    assert rc != 0 and "error:" in err and "--time-budget 'soon'" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
