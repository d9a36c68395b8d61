"""Filters: length, language policy, exact + near-duplicate index, one-liner cap; wired into make_examples."""

from __future__ import annotations

import random
import socket

import pytest

from mailvoice.dataset import filters
from mailvoice.dataset.build import BuildStats, DatasetOptions, make_examples
from mailvoice.dataset.filters import (
    NearDuplicateIndex,
    detect_language,
    is_one_liner,
    language_ok,
    length_ok,
    one_liner_cap,
    shingles,
)
from mailvoice.sources.record import MailRecord

EN = "Hi Tom, thanks for sending the slides over. I will read them tonight and get back to you tomorrow."
DE = "Hallo Tom, danke für die Folien. Ich lese sie heute Abend und melde mich morgen früh bei dir."
FR = "Bonjour Tom, merci pour les diapositives. Je les lirai ce soir et je te répondrai demain matin."
ES = "Hola Tom, gracias por enviar las diapositivas. Las leeré esta noche y te respondo mañana."


def test_length_ok():
    assert length_ok("one two three", 3, 5)
    assert not length_ok("one two", 3, 5)
    assert not length_ok("a b c d e f", 3, 5)


def test_detect_language_offline(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: (_ for _ in ()).throw(AssertionError("net")))
    filters._identifier.cache_clear()
    assert detect_language(EN) == "en"
    assert detect_language(DE) == "de"
    assert detect_language(FR) == "fr"
    assert detect_language(ES) == "es"
    assert detect_language("Thanks!") is None  # too short to tell


def test_language_policy():
    assert language_ok(DE, None)
    assert language_ok(EN, ["en"]) and not language_ok(DE, ["en"])
    assert language_ok(DE, ["en", "DE"])
    assert language_ok("Sounds good!", ["en"])  # unknown is kept


def test_shingles():
    assert shingles("a b c") == {"a b c"}
    assert len(shingles("one two three four five six seven")) == 3


def _words(rng, n):
    vocab = "budget venue offsite slides report draft client review meeting agenda invoice team plan".split()
    return " ".join(rng.choice(vocab) + str(rng.randint(0, 99)) for _ in range(n))


def test_near_duplicate_index():
    rng = random.Random(7)
    base = _words(rng, 120)
    idx = NearDuplicateIndex(0.8)
    assert idx.add("a", base)
    assert not idx.add("b", base.upper() + " !") and idx.last_reason == "duplicate_text"
    words = base.split()
    words[60] = "changed"  # one word in 120: Jaccard ≈ 0.96
    assert not idx.add("c", " ".join(words)) and idx.last_reason == "near_duplicate"
    assert idx.add("d", _words(rng, 120))
    assert len(idx) == 2


def test_near_duplicate_threshold_configurable():
    rng = random.Random(3)
    base = _words(rng, 100).split()
    variant = base[:]
    for i in range(0, 100, 20):  # 5 words changed: Jaccard of 5-gram shingles ≈ 71/121 ≈ 0.59
        variant[i] = "zzz"
    loose, strict = NearDuplicateIndex(0.4), NearDuplicateIndex(0.9)
    for idx in (loose, strict):
        idx.add("a", " ".join(base))
    assert not loose.add("b", " ".join(variant))
    assert strict.add("b", " ".join(variant))
    from mailvoice.errors import MailvoiceError

    for bad in (0.0, 0.99):
        with pytest.raises(MailvoiceError, match="between 0.05 and 0.95"):
            NearDuplicateIndex(bad)


def test_one_liner():
    assert is_one_liner("Thanks!") and is_one_liner(" Sounds good. ")
    assert not is_one_liner("Thanks!\nDana") and not is_one_liner("That works for me, see you then")
    assert one_liner_cap(50, 0.1) == 5 and one_liner_cap(0, 0.1) == 0


def _rec(i, text, name="Dana Whitfield"):
    return MailRecord(message_id=f"<m{i}@x>", thread_id=f"t{i}", date=f"2026-01-{i % 28 + 1:02d}",
                      from_addr="dana@willowcreek.example", from_name=name, to=("sam@example.com",),
                      subject=f"Re: plan {i}", text=text)


def test_make_examples_drops_by_reason_and_protects_name():
    rng = random.Random(11)
    bodies = [f"Dana here. {_words(rng, 45)} call me on +1 415-823-{4500 + i} {_words(rng, 45)}\n\nCheers,\nDana"
              for i in range(20)]
    recs = [_rec(i, b) for i, b in enumerate(bodies)]
    near = bodies[0].split(" ")
    near[5] = "other"
    recs += [
        _rec(100, bodies[1]),  # exact duplicate
        _rec(101, " ".join(near)),  # near duplicate
        _rec(102, DE + " " + DE),  # language
        _rec(103, "Works for me."), _rec(104, "Sounds good."), _rec(105, "See you there."),  # one-liners
        _rec(106, "ok"),  # too short
    ]
    stats = BuildStats()
    opts = DatasetOptions(min_words=2, languages=("en",), one_liner_share=0.1)
    out = make_examples(recs, opts, stats)
    assert stats.dropped["duplicate_text"] == 1
    assert stats.dropped["near_duplicate"] == 1
    assert stats.dropped["language"] == 1
    assert stats.dropped["too_short"] == 1
    assert stats.dropped["one_liner_cap"] == 1  # 20 regular → cap 2 of 3
    assert len(out) == 22
    assert stats.pii["PHONE"] == 20
    assert all(e.output.startswith("Dana here.") for e in out if len(e.output.split()) > 10)
