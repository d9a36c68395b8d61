"""Best-of-N's rerank score (gateway.compose.rerank_scores): P(you) alone picks the caricature;
habit distance and note coverage pull the choice back to what the user would write."""

from mailvoice.evaluate.metrics import surface_features
from mailvoice.gateway.compose import rerank_scores

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
