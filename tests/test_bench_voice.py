"""bench/voice.py's own logic, without training: the Sent copy of a list post, one table row."""

from __future__ import annotations

import sys
from pathlib import Path

from mailvoice.sources import SourceStats
from mailvoice.sources.filters import process_raw

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import voice  # noqa: E402

LIST_POST = (b"From: Ann <ann@example.org>\nTo: list@example.org\nSubject: Re: builds\n"
             b"List-Id: Builds\n <builds.example.org>\nPrecedence: bulk\nList-Unsubscribe: <mailto:x@example.org>\n"
             b"Message-ID: <p1@example.org>\n\nThe nightly build is green again.\n\nAnn\n")


def test_a_list_post_becomes_the_authors_sent_copy():
    stats = SourceStats()
    me = frozenset({"ann@example.org"})
    assert process_raw(LIST_POST, source="eml:x", labels=(), user_emails=me, stats=stats) is None
    assert stats.dropped["bulk"] == 1  # as received: rightly dropped
    sent = voice.as_sent_copy(LIST_POST)
    assert b"List-" not in sent and b"Precedence" not in sent and b"builds.example.org" not in sent
    assert sent.endswith(b"\n\nThe nightly build is green again.\n\nAnn\n") and b"Subject: Re: builds" in sent
    rec = process_raw(sent, source="eml:x", labels=(), user_emails=me, stats=SourceStats())
    assert rec is not None and "nightly build" in rec.text


def test_a_row_and_the_table_show_the_measures_and_the_yardsticks():
    side = {"voice_score": 1.2, "above_ceiling": True, "habit_ratio": 0.9, "auc": 0.8, "stop_rate": 0.6,
            "novelty": 0.99, "rouge_l": 0.2, "note_coverage": 0.4}
    m = {"train_rows": 40, "val_rows": 14, "voice": {"voice_score": {"base": 0.1, "tuned": 1.2},
                                                      "above_ceiling": {"base": False, "tuned": True}},
         "features": {"habit_ratio": {"base": 3.0, "tuned": 0.9, "other_authors": 2.1}},
         "discriminator": {"base": {"auc": 0.9}, "tuned": {"auc": 0.8}},
         "stop_rate": {"base": 0.1, "tuned": 0.6, "user_heldout": 0.55},
         "novelty": {"base": {"novelty": 1.0}, "tuned": {"novelty": 0.99}},
         "content": {"base": {"rouge_l": 0.1}, "tuned": {"rouge_l": 0.2}},
         "notes": {"base": {"coverage": 0.05}, "tuned": {"coverage": 0.4}},
         "perplexity": {"user_specific_gain": 0.3}}
    row = voice.summary_row(m, {"steps": 30, "epochs": 3.0}, "author 2", "served", {"prepare": 1, "train": 2, "evaluate": 3})
    assert row["tuned"] == side and row["stop_rate_user"] == 0.55 and row["habit_ratio_other_authors"] == 2.1
    table = voice.table([row])
    assert "| author 2 (served) | 40/14 | 30 (3.0) | 0.10 → 1.20* |" in table  # * = above the ceiling
    assert "| 0.60 (0.55) |" in table and "| mean (served) |" in table


def test_best_of_and_retrieval_rows_say_what_they_cost_and_change():
    side = {"voice_score": 0.5, "above_ceiling": False, "habit_ratio": 1.0, "auc": 0.8, "stop_rate": 0.9,
            "novelty": 1.0, "rouge_l": 0.1, "note_coverage": 0.3}
    base = {"author": "author 1", "decoding": "served", "train_rows": 40, "val_rows": 14, "steps": 30, "epochs": 3.0,
            "wall_s": {"prepare": 1, "train": 2, "evaluate": 3}, "base": side, "tuned": side,
            "user_specific_gain": 0.2, "stop_rate_user": 0.5, "habit_ratio_other_authors": 2.0}
    one = {**base, "candidates": 1, "timing": {"candidates": 1, "prompts": 16, "tuned_s": 32.0, "base_s": 30.0}}
    four = {**base, "candidates": 4, "timing": {"candidates": 4, "prompts": 16, "tuned_s": 96.0, "base_s": 30.0,
                                                "rerank_s": 1.5, "not_first_share": 0.75, "rag_other_s": 20.0,
                                                "rag_other_prompts": 10},
            "rag": {"with": {"habit_ratio": 1.1, "auc": 0.7, "note_coverage": 0.4, "novelty": 0.91, "rouge_l": 0.2},
                    "without": {"habit_ratio": 1.3, "auc": 0.8, "note_coverage": 0.3, "novelty": 0.99, "rouge_l": 0.1}}}
    table = voice.table([one, four])
    assert "| author 1 (served) |" in table and "| author 1 (served, best of 4) |" in table
    assert "| mean (served) |" in table and "| mean (served, best of 4) |" in table  # one mean row per setting
    assert "- author 1 best of 4: 6.00 s/prompt tuned vs 1.88 s/prompt base (3.2×), rerank 1.5 s, a later draft kept for 75%" in table
    assert "- author 1 retrieval with: habit ratio 1.10, AUC 0.70, notes 0.40, ROUGE-L 0.200, novelty 0.910" in table
    assert "- author 1 retrieval latency: 6.00 s/prompt as trained, 2.00 s/prompt the other way round" in table
