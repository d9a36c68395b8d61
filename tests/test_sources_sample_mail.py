"""Tests for scripts/make-sample-mail.py and the demo mailboxes it writes."""

import email
import email.policy
import email.utils
import importlib.util
import itertools
import mailbox
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make-sample-mail.py"
COMMITTED = ROOT / "data-samples" / "mailboxes"
DANA_ADDR = "dana@willowcreek-design.example"
MARCUS_ADDR = "marcus.bell@northgate-logistics.example"

# Where a quoted earlier message starts, in any of the supported forms.
QUOTE_HEADER_RE = re.compile(
    r"^(?:On .+(?:\n.*)?wrote:|-----Original Message-----|_{20,}"
    r"|From: .+\n(?:Sent|Date): .+)$", re.M)
QUOTE_START_RE = re.compile(QUOTE_HEADER_RE.pattern[:-2] + r"|>.*)$", re.M)
DANA_GREETING_RE = re.compile(r"^(?:Hi [^\s!]+!|Morning [^\s—]+ —)")
DANA_SIGNOFF_RE = re.compile(r"^(?:Cheers|Warmly),\nDana(?: x)?$", re.M)
WORD_RE = re.compile(r"[a-z0-9']+")


def load_script():
    spec = importlib.util.spec_from_file_location("make_sample_mail", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def read_mbox(path: Path) -> list:
    box = mailbox.mbox(str(path), create=False)
    try:
        return [email.message_from_bytes(box.get_bytes(key),
                                         policy=email.policy.default)
                for key in box.keys()]
    finally:
        box.close()


def plain_body(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def above_quote(body: str) -> str:
    match = QUOTE_START_RE.search(body)
    return body[:match.start()] if match else body


def own_text(body: str) -> str:
    """The author's own text: above any quote, without signature."""
    body = above_quote(body)
    body = body.split("\n-- \n")[0].split("Sent from my iPhone")[0]
    return body.strip()


def sender(msg) -> str:
    return msg["From"].addresses[0].addr_spec


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture(scope="module")
def generated(script, tmp_path_factory):
    out = tmp_path_factory.mktemp("mail-a")
    counts = script.generate(out)
    return out, counts


@pytest.fixture(scope="module")
def dana_msgs(generated):
    return read_mbox(generated[0] / "dana-sent.mbox")


@pytest.fixture(scope="module")
def marcus_msgs(generated):
    return read_mbox(generated[0] / "contrast-sent.mbox")


@pytest.fixture(scope="module")
def dana_authored(dana_msgs):
    return [m for m in dana_msgs
            if sender(m) == DANA_ADDR and "Auto-Submitted" not in m]


def test_generation_is_deterministic(script, generated, tmp_path):
    first, _ = generated
    counts = script.generate(tmp_path)
    assert counts == generated[1]
    for name in ("dana-sent.mbox", "contrast-sent.mbox"):
        assert (first / name).read_bytes() == (tmp_path / name).read_bytes()
    leftovers = [p.name for p in tmp_path.iterdir()
                 if p.name not in ("dana-sent.mbox", "contrast-sent.mbox")]
    assert leftovers == []


@pytest.mark.skipif(sys.version_info[:2] != (3, 11),
                    reason="committed files were generated with Python 3.11")
def test_committed_files_are_up_to_date(generated):
    for name in ("dana-sent.mbox", "contrast-sent.mbox"):
        committed = COMMITTED / name
        assert committed.exists(), f"{committed} missing: run the script"
        assert committed.read_bytes() == (generated[0] / name).read_bytes(), (
            f"{committed} is stale: run scripts/make-sample-mail.py")


def test_counts(generated, dana_msgs, dana_authored, marcus_msgs):
    counts = generated[1]
    assert len(dana_authored) >= 120
    assert counts["dana-sent.mbox"]["dana_authored"] == len(dana_authored)
    assert counts["dana-sent.mbox"]["messages"] == len(dana_msgs)
    received = [m for m in dana_msgs if sender(m) != DANA_ADDR]
    auto = [m for m in dana_msgs if m.get("Auto-Submitted")]
    assert 3 <= len(received) <= 10
    assert len(auto) == 2
    assert all(sender(m) == DANA_ADDR and m["Auto-Submitted"] == "auto-replied"
               and "Out of office" in plain_body(m) for m in auto)
    marcus = [m for m in marcus_msgs if sender(m) == MARCUS_ADDR]
    assert len(marcus) >= 80
    assert counts["contrast-sent.mbox"]["messages"] == len(marcus_msgs)


def test_every_message_parses(dana_msgs, marcus_msgs):
    lo = datetime(2025, 1, 1, tzinfo=timezone.utc)
    hi = datetime(2026, 7, 1, tzinfo=timezone.utc)
    for msg in dana_msgs + marcus_msgs:
        assert not msg.defects, msg["Message-ID"]
        for header in ("From", "To", "Subject", "Date", "Message-ID",
                       "MIME-Version"):
            assert msg[header], header
        date = email.utils.parsedate_to_datetime(msg["Date"])
        assert lo <= date < hi
        body = plain_body(msg)
        assert body.strip()
        assert not re.search(r"^>From ", body, re.M)
        assert not re.search(r"\{[a-z_0-9]+\}", body), "unfilled template"


def test_message_ids_unique(dana_msgs, marcus_msgs):
    ids = [m["Message-ID"] for m in dana_msgs + marcus_msgs]
    assert all(re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", i) for i in ids)
    assert len(ids) == len(set(ids))
    for msg in dana_msgs:
        if sender(msg) == DANA_ADDR:
            assert msg["Message-ID"].endswith("@willowcreek-design.example>")


def test_dana_voice_markers(dana_authored):
    texts = [own_text(plain_body(m)) for m in dana_authored]
    greeted = sum(bool(DANA_GREETING_RE.match(t)) for t in texts)
    signed = sum(bool(DANA_SIGNOFF_RE.search(t)) for t in texts)
    assert greeted >= 0.8 * len(texts)
    assert signed >= 0.8 * len(texts)
    assert sum("—" in t for t in texts) >= 0.6 * len(texts)
    assert sum(t.rstrip().endswith("?") or "?\n\n" in t
               for t in texts) >= 0.4 * len(texts)


def test_marcus_has_none_of_danas_markers(marcus_msgs):
    texts = [own_text(plain_body(m)) for m in marcus_msgs]
    for text in texts:
        assert not DANA_GREETING_RE.match(text)
        assert not DANA_SIGNOFF_RE.search(text)
        assert "—" not in text
        assert "!" not in text
    assert sum(t.startswith("Dear ") for t in texts) >= 0.8 * len(texts)
    assert sum("Kind regards," in t for t in texts) >= 0.8 * len(texts)
    assert sum("Marcus Bell\nOperations Manager" in t
               for t in texts) == len(texts)


def test_replies_carry_quotes(dana_authored, marcus_msgs):
    replies = [m for m in dana_authored if m["In-Reply-To"]]
    assert 0.5 <= len(replies) / len(dana_authored) <= 0.7
    quoted = [m for m in replies if QUOTE_HEADER_RE.search(plain_body(m))]
    assert len(quoted) >= 0.5 * len(replies)
    forms = {"gmail": r"^On .+ at \d\d:\d\d, ", "apple": r", at \d\d:\d\d, ",
             "outlook": r"^_{20,}$", "original": r"^-----Original Message"}
    for name, pattern in forms.items():
        assert any(re.search(pattern, plain_body(m), re.M)
                   for m in replies), name
    for msg in replies:
        assert msg["Subject"].startswith("Re: ")
        assert msg["In-Reply-To"] in msg["References"].split()
    marcus_replies = [m for m in marcus_msgs if m["In-Reply-To"]]
    assert len(marcus_replies) >= 20
    assert sum(bool(QUOTE_HEADER_RE.search(plain_body(m)))
               for m in marcus_replies) >= 0.5 * len(marcus_replies)


def test_no_near_duplicate_bodies(dana_authored):
    sets = [set(WORD_RE.findall(own_text(plain_body(m)).lower()))
            for m in dana_authored]
    for (i, a), (j, b) in itertools.combinations(enumerate(sets), 2):
        score = len(a & b) / len(a | b)
        assert score < 0.8, (dana_authored[i]["Message-ID"],
                             dana_authored[j]["Message-ID"], score)


def test_threads_html_signature_and_pii(script, dana_authored):
    roots = {}
    for msg in dana_authored:
        if msg["References"]:
            root = msg["References"].split()[0]
            roots.setdefault(root, []).append(msg)
    threads = [t for t in roots.values() if len(t) >= 3]
    assert len(threads) >= 3

    html = [m for m in dana_authored if m.get_content_type()
            == "multipart/alternative"]
    assert len(html) >= 8
    for msg in html:
        part = msg.get_body(preferencelist=("html",))
        assert "<p>" in part.get_content()
    assert any('<blockquote class="gmail_quote"' in
               m.get_body(preferencelist=("html",)).get_content()
               for m in html)

    bodies = [plain_body(m) for m in dana_authored]
    signed = sum("\n-- \nDana Whitfield\nWillow Creek Garden Design\n"
                 in b for b in bodies)
    assert 0.2 * len(bodies) <= signed <= 0.4 * len(bodies)
    assert sum("Sent from my iPhone" in above_quote(b) for b in bodies) >= 2
    for value in script.PLANTED_PII.values():
        assert sum(value in b for b in bodies) >= 1, value
