"""Pure evaluation metrics on strings and small arrays: classifier calibration, Delta, surface
features, novelty, exposure math, canary planting, PII leak detection, the gate."""

import json
import math
import random
import re
from dataclasses import dataclass

import pytest

from mailvoice.artifacts import CANARIES
from mailvoice.dataset import canaries as C
from mailvoice.errors import MailvoiceError
from mailvoice.evaluate import metrics as M

NAMES = ["Sam", "Priya", "Tom", "Hannah", "Leo", "Marco", "Rob", "Megan", "Ana", "Joe"]
TOPICS = ["the planting plan", "the site visit", "the invoice", "the oak", "the terrace", "the paving",
          "the hedge", "the order", "the delivery", "the meeting", "the quote", "the schedule"]


def casual(rng):
    n, t = rng.choice(NAMES), rng.choice(TOPICS)
    body = rng.sample([f"Quick thought on {t} — love it!", f"Shall we say Tuesday for {t}?",
                       "Let's get our hands dirty!", f"I'll pop round about {t}.", "You in?",
                       f"Oh, {t} looks brilliant!", "Send me a photo?"], 3)
    return f"Hi {n}!\n\n" + "\n\n".join(body) + "\n\nCheers,\nDana"


def formal(rng):
    n, t = rng.choice(NAMES), rng.choice(TOPICS)
    body = rng.sample([f"I trust this finds you well. I am writing regarding {t}.",
                       f"Please find attached the relevant documentation concerning {t}.",
                       "I would appreciate your confirmation at your earliest convenience.",
                       f"We remain committed to the highest standards in respect of {t}.",
                       "Please do not hesitate to contact me should you require further information."], 3)
    return f"Dear {n},\n\n" + "\n\n".join(body) + "\n\nKind regards,\nMarcus Bell"


def corpus(fn, n, seed):
    rng = random.Random(seed)
    return [fn(rng) for _ in range(n)]


def test_classifier_is_calibrated_and_places_generations_between_floor_and_ceiling():
    rep = M.voice_scores(
        user_train=corpus(casual, 40, 1), other_train=corpus(formal, 40, 2),
        user_heldout=corpus(casual, 10, 3), other_heldout=corpus(formal, 10, 4),
        generations={"like_user": corpus(casual, 5, 5), "like_other": corpus(formal, 5, 6)},
    )
    assert rep.calibrated and rep.ceiling - rep.floor > 0.5, rep
    assert rep.voice_score["like_user"] > 0.8 > 0.2 > rep.voice_score["like_other"]
    assert len(rep.per_text["like_user"]) == 5 and all(0 <= p <= 1 for p in rep.per_text["like_user"])


def test_classifier_says_not_enough_data_when_it_cannot_separate_or_has_too_few():
    few = M.voice_scores(user_train=corpus(casual, 3, 1), other_train=corpus(formal, 40, 2),
                         user_heldout=corpus(casual, 10, 3), other_heldout=corpus(formal, 10, 4),
                         generations={"tuned": ["Hi"]})
    assert not few.calibrated and few.reason.startswith("not enough data to judge") and few.voice_score == {"tuned": None}
    # two authors writing the same way: the ceiling does not clear the floor by the margin
    same = M.voice_scores(user_train=corpus(casual, 30, 1), other_train=corpus(casual, 30, 2),
                          user_heldout=corpus(casual, 10, 3), other_heldout=corpus(casual, 10, 4),
                          generations={"tuned": corpus(casual, 3, 5)})
    assert not same.calibrated and "not enough data to judge" in same.reason
    assert same.voice_score["tuned"] is None


def test_calibrated_clips_and_refuses_an_inverted_scale():
    assert M.calibrated(0.5, 0.2, 0.8) == pytest.approx(0.5)
    assert M.calibrated(0.9, 0.2, 0.8) == 1.0 and M.calibrated(0.1, 0.2, 0.8) == 0.0
    assert M.calibrated(0.5, 0.8, 0.2) is None and M.calibrated(None, 0.1, 0.9) is None


def test_burrows_delta_is_smaller_for_the_same_author():
    u, o = corpus(casual, 30, 1), corpus(formal, 30, 2)
    same = M.burrows_delta(u + o, u, corpus(casual, 10, 3))
    other = M.burrows_delta(u + o, u, corpus(formal, 10, 4))
    assert 0 <= same < other
    assert M.burrows_delta(u[:1], u, u) is None


def test_surface_features_read_greetings_sign_offs_and_punctuation():
    f = M.surface_features(["Hi Sam!\n\nGreat — see you Tuesday?\n\nCheers,\nDana",
                            "Hello Tom,\n\nThanks, all good.\n\nBest,\nDana"])
    assert f["emails"] == 2 and f["greeting_rate"] == 1.0 and f["sign_off_rate"] == 1.0
    assert f["top_greeting"] in {"hi", "hello"} and f["exclamations"] > 0 and f["questions"] > 0 and f["dashes"] > 0
    assert M.greeting_of("Dear Ms. Foster,\n\nx") == "dear" and M.sign_off_of("Body.\n\nKind regards,\nMarcus Bell") == "kind regards"
    assert M.greeting_of("The plan is ready.") is None
    assert M.feature_distance(f, f) == 0
    assert M.surface_features([]) == {}


def test_novelty_counts_generated_8grams_missing_from_training():
    train = ["the quick brown fox jumps over the lazy dog and runs away"]
    copied = M.novelty(["the quick brown fox jumps over the lazy dog"], train)
    assert copied["novelty"] == 0.0 and copied["ngrams"] == 2
    new = M.novelty(["a completely different sentence that shares nothing with it at all"], train)
    assert new["novelty"] == 1.0
    half = M.novelty(["the quick brown fox jumps over the lazy cat"], train)
    assert half["novelty"] == pytest.approx(0.5)
    assert M.novelty(["too short"], train)["novelty"] is None


def test_content_overlap_is_rouge_l_and_chrf():
    same = M.content_overlap(["Tuesday works for the site visit."], ["Tuesday works for the site visit."])
    assert same["rouge_l"] == pytest.approx(1.0) and same["chrf"] == pytest.approx(100.0)
    diff = M.content_overlap(["Lovely, thanks!"], ["The invoice was paid on Friday."])
    assert diff["rouge_l"] < 0.3 and diff["chrf"] < 30
    assert M.content_overlap(["x"], [""])["pairs"] == 0


def test_exposure_math_follows_the_secret_sharer():
    assert C.rank_of(-1.0, [-5.0, -3.0, -2.0]) == 1
    assert C.exposure(-1.0, [-5.0, -3.0, -2.0]) == pytest.approx(2.0)  # log2(4) - log2(1)
    assert C.exposure(-9.0, [-5.0, -3.0, -2.0]) == pytest.approx(0.0)  # ranked last
    assert C.rank_of(-3.0, [-5.0, -3.0, -2.0]) == 2  # ties favour the canary
    assert C.max_exposure(99) == pytest.approx(math.log2(100))


@dataclass
class Ex:
    id: str
    output: str


def test_planting_puts_each_canary_in_distinct_rows_and_candidates_share_its_format():
    rows = [Ex(f"id{i}", f"Hi Sam!\n\nLine {i}.\n\nCheers,\nDana") for i in range(20)]
    planted, cans = C.plant(rows, 2, repeats=3, seed=7)
    assert len(cans) == 2 and len({c.prefix for c in cans}) == 2
    touched = [r for r in planted if "gate code" in r.output]
    assert len(touched) == 6 and len({r.id for r in touched}) == 6
    for c in cans:
        assert re.fullmatch(r"\d{6}", c.secret) and len(c.rows) == 3
        assert sum(c.text in r.output for r in planted) == 3
        cands = C.candidate_secrets(c, 50)
        assert len(cands) == 50 and c.secret not in cands and all(re.fullmatch(r"\d{6}", s) for s in cands)
    assert planted[0].output.startswith("Hi Sam!\n\n")
    assert C.plant(rows, 2, repeats=3, seed=7)[1][0].secret == cans[0].secret  # deterministic
    with pytest.raises(ValueError):
        C.plant(rows[:3], 2, repeats=3)


def test_canaries_round_trip_through_canaries_json(tmp_path):
    cans = C.make_canaries(3, seed=1)
    C.write_canaries(tmp_path / CANARIES, cans, repeats=4)
    back = C.read_canaries(tmp_path)
    assert [(c.prefix, c.secret) for c in back] == [(c.prefix, c.secret) for c in cans]
    assert C.read_canaries(tmp_path / "nope") == []


def test_pii_values_from_training_are_caught_when_they_come_back(monkeypatch):
    import mailvoice.dataset.pii as P

    def fake_scrub(text, keep_urls=False, **kw):
        text = re.sub(r"[\w.]+@[\w.-]+\.example", "<EMAIL>", text)
        return P.Scrubbed(re.sub(r"\+44 7700 900456|07700 900781", "<PHONE>", text))

    monkeypatch.setattr(P, "scrub", fake_scrub)
    src = "Call me on +44 7700 900456 or mail g.ellery@brookside-surveys.example. Thanks!\nphone 07700 900781"
    vals = M.find_pii(src)
    assert vals == {"+44 7700 900456", "g.ellery@brookside-surveys.example", "07700 900781"}
    leaks = M.pii_leaks(["ring 07700 900456 any time", "write to G.Ellery@Brookside-Surveys.example",
                         "or 07700 900781", "call <PHONE>"], vals, allowed={"07700 900781"})
    assert len(leaks) == 2 and all("…" in v for v in leaks)  # masked, never the value itself
    assert "900456" not in " ".join(leaks)
    assert M.pii_leaks(["Hi <PHONE>, see <EMAIL>"], vals) == []


def _metrics(tuned=0.7, novelty=0.99, extracted=0, leaked=(), calibrated=True):
    return {
        "voice": {"voice_score": {"tuned": tuned if calibrated else None}, "reason": "not enough data to judge: x"},
        "novelty": {"tuned": {"novelty": novelty}},
        "canaries": {"extracted": extracted, "planted": 2},
        "pii": {"leaked": list(leaked)},
    }


def test_gate_passes_and_fails_with_clear_messages():
    from mailvoice.evaluate.run import run_gate

    ok = run_gate(_metrics(), min_voice_score=0.5, min_novelty=0.95, max_canary_leaks=0)
    assert ok["passed"] and not ok["failures"] and len(ok["checks"]) == 4
    bad = run_gate(_metrics(tuned=0.3, novelty=0.9, extracted=1), min_voice_score=0.5, min_novelty=0.95, max_canary_leaks=0)
    assert not bad["passed"] and len(bad["failures"]) == 3
    assert any("voice score 0.30 < --min-voice-score 0.5" in f for f in bad["failures"])
    assert any("--min-novelty" in f for f in bad["failures"]) and any("--max-canary-leaks" in f for f in bad["failures"])
    cannot = run_gate(_metrics(calibrated=False), min_voice_score=0.5)
    assert not cannot["passed"] and "cannot be judged" in cannot["failures"][0]
    assert not run_gate(_metrics(leaked=["g.…le"]))["passed"]  # PII coming back always fails
    assert run_gate(_metrics())["passed"]


def test_require_eval_refuses_missing_changed_or_failed_evaluations(tmp_path):
    from mailvoice.artifacts import EVALUATION, Adapter

    a = tmp_path / "final"
    a.mkdir()
    (a / "adapter_config.json").write_text("{}")
    (a / "adapter_model.safetensors").write_bytes(b"weights")
    with pytest.raises(MailvoiceError, match="no evaluation on record") as e:
        Adapter.open(tmp_path).require_gate()
    assert e.value.exit_code == 3
    rec = {"adapter_sha256": Adapter(a).digest(), "gate": {"passed": False, "failures": ["voice score 0.10 < --min-voice-score 0.5"]}}
    (a / EVALUATION).write_text(json.dumps(rec))
    with pytest.raises(MailvoiceError, match="last evaluation failed: voice score 0.10"):
        Adapter.open(a).require_gate()
    rec["gate"] = {"passed": True, "failures": []}
    (a / EVALUATION).write_text(json.dumps(rec))
    assert Adapter.open(tmp_path).require_gate()["gate"]["passed"]
    (a / "adapter_model.safetensors").write_bytes(b"other weights")
    with pytest.raises(MailvoiceError, match="changed since its last evaluation"):
        Adapter.open(a).require_gate()


def test_control_split_is_disjoint_and_deterministic():
    from mailvoice.evaluate.run import split_control

    rows = [{"id": f"{i:03d}", "messages": []} for i in range(30)]
    tr, ho = split_control(list(reversed(rows)))
    assert len(ho) == 10 and len(tr) == 20 and not {r["id"] for r in tr} & {r["id"] for r in ho}
    assert split_control(rows) == (tr, ho)


def test_prepare_plants_canaries_only_in_train(tmp_path):
    from conftest import DANA_MBOX, DANA

    from mailvoice.dataset.build import DatasetOptions
    from mailvoice.dataset.prepare import prepare

    out = tmp_path / "data"
    prepare(sources=[str(DANA_MBOX)], out_dir=out, user_emails=[DANA],
            opts=DatasetOptions(min_emails=20, plant_canaries=2, canary_repeats=3), notice=lambda m: None)
    cans = C.read_canaries(out)
    assert len(cans) == 2
    train = (out / "train_chat.jsonl").read_text()
    val = (out / "val_chat.jsonl").read_text()
    for c in cans:
        assert train.count(c.text) == 3 and c.secret not in val
    # preparing again without canaries removes the stale record
    prepare(sources=[str(DANA_MBOX)], out_dir=out, user_emails=[DANA], opts=DatasetOptions(min_emails=20),
            notice=lambda m: None)
    assert not (out / CANARIES).exists() and "gate code" not in (out / "train_chat.jsonl").read_text()


def test_voice_score_is_unclipped_and_flags_a_caricature_above_the_ceiling():
    # the user's real held-out mail is mixed (half casual, half formal); the "model" writes pure casual:
    # more typical of the user than the user's own mail
    held = corpus(casual, 5, 3) + corpus(formal, 5, 9)
    rep = M.voice_scores(user_train=corpus(casual, 40, 1), other_train=corpus(formal, 40, 2),
                         user_heldout=held, other_heldout=corpus(formal, 10, 4),
                         generations={"caricature": corpus(casual, 6, 5), "other": corpus(formal, 6, 6)})
    assert rep.calibrated, rep.reason
    assert rep.voice_score["caricature"] > 1.2 and rep.above_ceiling == {"caricature": True, "other": False}
    assert rep.voice_score["other"] < 0.2
    assert M.calibrated(0.9, 0.2, 0.8, clip=False) == pytest.approx(7 / 6)
    assert M.calibrated(0.1, 0.2, 0.8, clip=False) == pytest.approx(-1 / 6)


def test_discriminator_tells_a_different_writer_apart_and_not_the_same_one():
    real = corpus(casual, 20, 11)
    apart = M.discriminator_auc(real, corpus(formal, 20, 12))
    assert apart["auc"] > 0.95 and apart["pairs"] == 20 and apart["folds"] == 5
    same = M.discriminator_auc(real, corpus(casual, 20, 13))
    assert same["auc"] < 0.75, same
    # habits alone give a caricature away: always greeting, never signing off, twice as long
    rng = random.Random(14)
    caricature = ["Hi there!\n\n" + casual(rng).split("\n\n", 1)[1].rsplit("\n\nCheers", 1)[0] * 2 for _ in range(20)]
    assert M.discriminator_auc(real, caricature)["auc"] > 0.9
    few = M.discriminator_auc(real[:3], corpus(formal, 3, 12))
    assert few["auc"] is None and "need 5" in few["reason"]
    # empty generations are dropped pairwise, never scored as text
    assert M.discriminator_auc(real[:6], ["", *corpus(formal, 5, 12)])["pairs"] == 5


def test_habit_ratio_puts_distance_on_the_users_own_scale():
    assert M.habit_ratio(0.34, 0.14) == pytest.approx(0.34 / 0.14)
    assert M.habit_ratio(0.1, 0.0) == pytest.approx(5.0)  # a near-zero own distance is floored at 0.02
    assert M.habit_ratio(None, 0.1) is None and M.habit_ratio(0.1, None) is None
    v = M.habit_vector("Hi Sam,\n\nShall we say Tuesday? Great!\n\nCheers,\nDana")
    assert v[2] == 1.0 and v[3] == 1.0 and v[7] == 3.0  # greeting, sign-off, paragraphs
    assert M.habit_vector("ok")[2:4] == [0.0, 0.0]


def test_gate_checks_the_new_measures():
    from mailvoice.evaluate.run import run_gate

    m = _metrics()
    m.update({"features": {"habit_ratio": {"tuned": 2.4}}, "discriminator": {"tuned": {"auc": 0.6}},
              "stop_rate": {"tuned": 0.9}, "perplexity": {"user_specific_gain": 0.12}})
    g = run_gate(m, max_habit_ratio=1.5, max_discriminator_auc=0.75, min_stop_rate=0.95, min_user_gain=0.0)
    assert not g["passed"] and len(g["failures"]) == 2
    assert any("habit-distance ratio 2.40 > --max-habit-ratio 1.5" in f for f in g["failures"])
    assert any("stop rate 0.90 < --min-stop-rate 0.95" in f for f in g["failures"])
    assert g["thresholds"]["max_discriminator_auc"] == 0.75
    m["discriminator"] = {"tuned": {"auc": None, "reason": "not enough data to judge: 2 real/generated pairs (need 5)"}}
    g = run_gate(m, max_discriminator_auc=0.75)
    assert not g["passed"] and "cannot be judged" in g["failures"][0] and "need 5" in g["failures"][0]


def test_own_stop_rate_counts_the_replies_that_fit_with_their_end_token():
    from mailvoice.evaluate.run import own_stop_rate

    def tok(text, add_special_tokens=False):  # one token per word, like a word-level tokenizer
        return {"input_ids": text.split()}

    replies = ["one two three", "a b c d e f g h i", "x"]
    assert own_stop_rate(tok, replies, 4) == 2 / 3  # 3 words + end = 4 fits; 9 + 1 does not
    assert own_stop_rate(tok, replies, 3) == 1 / 3
    assert own_stop_rate(tok, [], 10) is None
