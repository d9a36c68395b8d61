"""Best-of-N's rerank score (evaluate.rerank.rerank_scores): P(you) alone picks the caricature;
habit distance and note coverage pull the choice back to what the user would write."""

from types import SimpleNamespace

from mailvoice.evaluate.metrics import surface_features
from mailvoice.evaluate.rerank import TRUNCATED_PENALTY, rerank_scores
from mailvoice.evaluate.run import Generations, best_of

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


def test_a_draft_cut_off_by_the_token_limit_loses_to_one_that_ended():
    """Note coverage rewards length; a cut-off draft covers more notes but is not an email."""
    notes = "Monday 10am fine; bring planting plan"
    cut = LIKE_USER.removesuffix("\n\nDana") + " and also the"
    s = rerank_scores([0.6, 0.6], [cut, LIKE_USER], PROFILE, notes, stopped=[False, True])
    assert s[1] > s[0]
    same = rerank_scores([0.6], [cut], PROFILE, notes)
    assert rerank_scores([0.6], [cut], PROFILE, notes, stopped=[False])[0] == same[0] - TRUNCATED_PENALTY


def eval_inputs(prompts: list[str], others: list[str]) -> SimpleNamespace:
    """What run.best_of reads of EvalInputs: the prompts, the user's training rows, the control's."""
    def row(text):
        return {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "Subject: x"},
                             {"role": "assistant", "content": text}]}

    return SimpleNamespace(texts=prompts, train_rows=[row(t) for t in USER * 3], control_train=[row(t) for t in others])


def test_evaluate_best_of_keeps_each_prompts_best_draft_by_the_rerank():
    """evaluate's best-of-N (run.best_of) on real classifier and habit profile: candidate j of
    prompt i is row j·k + i; the caricature loses to the user-like draft wherever it sits."""
    others = ["Dear Sir or Madam,\n\nPlease find attached the quarterly statement for your records.\n\nKind regards,\nAccounts",
              "Good afternoon team,\n\nThe warehouse will be closed on Friday for inventory.\n\nBest wishes,\nMarcus",
              "Hello all,\n\nReminder that timesheets are due by end of day Thursday.\n\nRegards,\nHR"] * 3
    inp = eval_inputs(["Subject: plans", "Subject: photos"], others)
    like2 = "Yes, send the photos Monday.\n\nDana"
    gens = Generations(tuned=[{"text": CARICATURE, "stopped": True}, {"text": like2, "stopped": True},
                              {"text": LIKE_USER, "stopped": True}, {"text": CARICATURE, "stopped": True}], base=[])
    gens.timing = {"candidates": 2}
    best_of(inp, gens, 2)
    assert [g["text"] for g in gens.tuned] == [LIKE_USER, like2]
    assert gens.timing["not_first_share"] == 0.5 and gens.timing["rerank_s"] >= 0


def test_evaluate_best_of_passes_each_drafts_end_to_the_rerank():
    inp = eval_inputs(["Subject: plans"], ["Dear all,\n\nThe office closes at five on Friday.\n\nRegards,\nFacilities"] * 6)
    gens = Generations(tuned=[{"text": LIKE_USER, "stopped": False}, {"text": LIKE_USER + " ", "stopped": True}], base=[])
    gens.timing = {}
    best_of(inp, gens, 2)
    assert gens.tuned[0]["stopped"] is True and gens.timing["not_first_share"] == 1.0


def test_remote_drafts_say_which_ended_and_which_hit_the_limit():
    """compose.generate_remote reads Ollama's ``done_reason`` on the final response (Ollama's
    docs/api.md shows "stop"; the server says "length" when ``num_predict`` ended the reply, as
    llama-server's ``stop_type: limit``) and OpenAI's ``finish_reason`` ("stop" | "length");
    this stand-in follows those published fields only."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mailvoice.gateway.compose import generate_remote

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            seed = body.get("seed", (body.get("options") or {}).get("seed"))
            reason = "length" if seed == 0 else "stop"
            if self.path == "/api/chat":
                out = {"model": body["model"], "message": {"role": "assistant", "content": f" draft {seed} "},
                       "done": True, "done_reason": reason}
            else:
                out = {"choices": [{"message": {"role": "assistant", "content": f"draft {seed}"}, "finish_reason": reason}]}
            raw = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        for api in ("ollama", "openai"):
            drafts = generate_remote(url, "emailai-dana", "Subject: x", api=api, n=2, temperature=0.7)
            assert drafts == [{"text": "draft 0", "stopped": False}, {"text": "draft 1", "stopped": True}], api
    finally:
        srv.shutdown()
        srv.server_close()
