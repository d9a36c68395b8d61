"""Training prompts carry content cues derived from the reply (notes.py), and evaluate measures
how many of a prompt's note items the email expresses."""

from conftest import prepare_sample

from mailvoice.chat import prompt_fields
from mailvoice.dataset import notes as N
from mailvoice.workspace import read_jsonl

REPLY = """Hi Priya,

Thanks for sending the plans over. I've attached the first draft of the planting plan for the back garden.
Could you check how much shade the oak casts in the afternoon? I'd suggest a quick call on Monday at 10am to go through it.

Cheers,
Dana"""


def test_notes_keep_the_replys_points_in_order_with_asks_and_dates():
    items = N.derive_notes(REPLY)
    assert items == ["sending plans", "attached first draft planting plan back garden",
                     "ask: check shade oak casts afternoon", "suggest quick call Monday 10am go"]
    assert not any(w in " ".join(items).lower() for w in ("priya", "cheers", "dana"))  # greeting and sign-off are style
    # over the item budget: asks and dated sentences first, then the earliest, still in the reply's order
    long = "Hi Sam,\n\nThe hedge looks great now. The oak needs pruning soon. Gravel arrives Friday. " \
           "Can you send the invoice? The terrace stones are stacked by the gate.\n\nBest,\nDana"
    assert N.derive_notes(long, max_items=3) == ["hedge looks", "Gravel arrives Friday", "ask: send invoice"]
    assert N.derive_notes("Thanks!\n\nDana") == []


def test_note_items_and_coverage():
    assert N.note_items("a b; c, d; e") == ["a b", "c, d", "e"]
    assert N.note_items("attach the draft, ask about shade, call Monday") == ["attach the draft", "ask about shade", "call Monday"]
    notes = N.notes_text(N.derive_notes(REPLY))
    assert N.note_coverage([notes], [REPLY]) == {"coverage": 1.0, "items": 4, "prompts": 1}
    half = "The first draft is attached: planting, back garden. Could you check the oak's shade in the afternoon?"
    assert N.note_coverage([notes], [half])["coverage"] == 0.5
    assert N.note_coverage(["", None], ["x", "y"]) == {"coverage": None, "items": 0, "prompts": 0}
    assert N.item_expressed("ask: send invoices", "Could you send the invoice?")  # stems, ask: prefix ignored


def test_share_is_deterministic_per_example():
    ids = [f"id{i}" for i in range(2000)]
    picked = [N.gets_notes(i, 0.7) for i in ids]
    assert picked == [N.gets_notes(i, 0.7) for i in ids] and 0.65 < sum(picked) / len(ids) < 0.75
    assert not any(N.gets_notes(i, 0.0) for i in ids) and all(N.gets_notes(i, 1.0) for i in ids)


def test_prepare_puts_derived_notes_in_a_share_of_prompts(tmp_path):
    res = prepare_sample(tmp_path, n=60)
    rows = read_jsonl(res.out_dir / "train_chat.jsonl") + read_jsonl(res.out_dir / "val_chat.jsonl")
    with_notes = [r for r in rows if prompt_fields(r["messages"][1]["content"])["notes"]]
    assert 0.45 < len(with_notes) / len(rows) < 0.9
    for r in with_notes:  # every note item comes from the reply it prompts for
        notes = prompt_fields(r["messages"][1]["content"])["notes"]
        assert N.note_coverage([notes], [r["messages"][2]["content"]])["coverage"] == 1.0, notes
    meta = res.metadata
    assert meta["notes"]["share"] == 0.7 and meta["notes"]["train"] + meta["notes"]["val"] == len(with_notes)
    alpaca = read_jsonl(res.out_dir / "train_alpaca.jsonl")
    assert sum("\nNotes: " in a["instruction"] for a in alpaca) == meta["notes"]["train"]
    (tmp_path / "none").mkdir()
    none = prepare_sample(tmp_path / "none", n=60, note_share=0.0)
    assert not any("Notes:" in r["messages"][1]["content"] for r in read_jsonl(none.out_dir / "train_chat.jsonl"))
