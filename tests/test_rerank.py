"""Best-of-N's rerank score (evaluate.rerank.rerank_scores): P(you) alone picks the caricature;
habit distance and note coverage pull the choice back to what the user would write."""

from mailvoice.evaluate.metrics import surface_features
from mailvoice.evaluate.rerank import rerank_scores

USER = ["Thursday works. I'll bring the plans.\n\nDana", "Sure, Monday at 10 is fine.\n\nDana",
        "Got it, thanks. Invoice paid today.\n\nDana", "Yes please, send the photos.\n\nDana"]
PROFILE = surface_features(USER)

LIKE_USER = "Monday at 10 is fine. I'll bring the planting plan.\n\nDana"
CARICATURE = ("Hi Priya!\n\nThanks so much for your email! I hope you are having a wonderful week! "
              "I wanted to let you know that I have been thinking a lot about the garden and all of the lovely "
              "plants we could use, and I am so excited to get started on everything with you soon!\n\n"
              "Cheers, cheers,\nDana")


def test_habit_distance_outweighs_a_small_classifier_edge():
    p = [0.70, 0.80]  # the classifier slightly prefers the caricature
    s = rerank_scores(p, [LIKE_USER, CARICATURE], PROFILE)
    assert s[0] > s[1]
    assert rerank_scores(p, [LIKE_USER, CARICATURE], None) == p  # no profile: P(you) alone


def test_notes_coverage_picks_the_candidate_that_says_what_was_asked():
    notes = "Monday 10am fine; bring planting plan"
    vague = "Sounds good, talk soon.\n\nDana"
    s = rerank_scores([0.6, 0.6], [LIKE_USER, vague], PROFILE, notes)
    assert s[0] > s[1] and s[0] - s[1] > 0.4
    assert rerank_scores([0.9], [""], PROFILE, notes) == [-1.0]  # an empty candidate never wins


def test_evaluate_best_of_keeps_each_prompts_best_draft_by_the_rerank():
    """evaluate's best-of-N (run.best_of) on real classifier and habit profile: candidate j of
    prompt i is row j·k + i; the caricature loses to the user-like draft wherever it sits."""
    from types import SimpleNamespace

    from mailvoice.evaluate.run import Generations, best_of

    def row(text):
        return {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "Subject: x"},
                             {"role": "assistant", "content": text}]}

    others = ["Dear Sir or Madam,\n\nPlease find attached the quarterly statement for your records.\n\nKind regards,\nAccounts",
              "Good afternoon team,\n\nThe warehouse will be closed on Friday for inventory.\n\nBest wishes,\nMarcus",
              "Hello all,\n\nReminder that timesheets are due by end of day Thursday.\n\nRegards,\nHR"] * 3
    inp = SimpleNamespace(texts=["Subject: plans", "Subject: photos"], train_rows=[row(t) for t in USER * 3],
                          control_train=[row(t) for t in others])
    like2 = "Yes, send the photos Monday.\n\nDana"
    gens = Generations(tuned=[{"text": CARICATURE, "stopped": False}, {"text": like2, "stopped": True},
                              {"text": LIKE_USER, "stopped": True}, {"text": CARICATURE, "stopped": False}], base=[])
    gens.timing = {"candidates": 2}
    best_of(inp, gens, 2)
    assert [g["text"] for g in gens.tuned] == [LIKE_USER, like2]
    assert gens.timing["not_first_share"] == 0.5 and gens.timing["rerank_s"] >= 0
