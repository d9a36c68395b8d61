"""``artifacts.Adapter``: the one reading of a trained adapter's folder (seconds, no model)."""

from __future__ import annotations

import json

import pytest

from mailvoice.artifacts import ADAPTER_CONFIG, EVALUATION, TRAINING_SUMMARY, Adapter, find_retrieval
from mailvoice.chat import LLAMA3
from mailvoice.errors import MailvoiceError


def _run(tmp_path, summary=None):
    final = tmp_path / "run" / "final"
    final.mkdir(parents=True)
    (final / ADAPTER_CONFIG).write_text(json.dumps({"r": 8, "base_model_name_or_path": "org/peft-base"}))
    (final / "adapter_model.safetensors").write_bytes(b"w")
    if summary is not None:
        (final / TRAINING_SUMMARY).write_text(json.dumps(summary))
    return final


def test_a_run_folder_or_its_final_opens_and_reads_what_training_recorded(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    final = _run(tmp_path, {"base_path": str(base), "base_hf_id": "org/base", "chat_format": "llama3",
                            "config": {"train_file": "train_emailai.jsonl"}})
    for path in (final.parent, final):
        a = Adapter.open(path)
        assert a.path == final and a.base == str(base) and a.base_hf_id == "org/base"
        assert a.chat_format is LLAMA3 and a.train_file == "train_emailai.jsonl"
        assert a.retrieval_dir is None and a.evaluation is None
    (final / "retrieval").mkdir()
    (final / "retrieval" / "docs.jsonl").write_text("")
    assert Adapter.open(final.parent).retrieval_dir is None  # no index.json yet: not an index
    (final / "retrieval" / "index.json").write_text("{}")
    assert Adapter.open(final.parent).retrieval_dir == final / "retrieval" == find_retrieval(final.parent)


def test_an_adapter_trained_elsewhere_falls_back_to_peft_and_a_non_adapter_is_one_error(tmp_path):
    a = Adapter.open(_run(tmp_path))
    assert a.summary == {} and a.base == "org/peft-base" and a.base_hf_id == "org/peft-base" and a.train_file is None
    with pytest.raises(MailvoiceError, match="no PEFT adapter found"):
        Adapter.open(tmp_path / "nothing")
    assert Adapter.find(None) is None and Adapter.find(tmp_path) is None


def test_gate_is_tied_to_the_weights_it_judged(tmp_path):
    a = Adapter.open(_run(tmp_path))
    assert a.gate().passed is None
    a.write_evaluation({"gate": {"passed": True, "failures": []}})
    assert a.gate().passed is True and a.require_gate()["adapter_sha256"] == a.digest()
    (a.path / ADAPTER_CONFIG).write_text(json.dumps({"r": 16}))  # the config is part of the digest too
    assert a.gate().passed is False and "changed since" in a.gate().reason
    (a.path / EVALUATION).write_text("{not json")
    assert a.gate().passed is False  # unreadable: not trusted
    with pytest.raises(MailvoiceError) as e:
        a.require_gate()
    assert e.value.exit_code == 3
