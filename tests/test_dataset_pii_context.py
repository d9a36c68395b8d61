"""Values written after their keyword (issue 15 item 3): an SSN without separators ("ssn: 536228421"),
the well-known sample SSNs, bank routing/account numbers and sort codes, dates of birth.

Planted canaries of each form, seeded, in several contexts (inline, after a line break, quoted),
must all be scrubbed; the same forms planted into Dana's sample mail must not reach any file
``prepare`` writes for training (``train_alpaca.jsonl``, ``val_alpaca.jsonl``, the manifest, ...).
"""

from __future__ import annotations

import json
import mailbox
import random
import re

import pytest

from conftest import DANA, DANA_MBOX
from mailvoice.dataset.pii import scrub

SEED = 20261207
MONTHS = ["January", "Feb", "March", "Apr", "May", "June", "Jul", "August", "Sept", "October", "Nov", "December"]


def _aba(rng: random.Random) -> str:
    """A routing number with a valid ABA checksum (3-7-1 weights)."""
    while True:
        d = [rng.randint(0, 9) for _ in range(8)]
        d[0] = rng.choice([0, 1, 2, 3])
        s = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5])
        check = (10 - s % 10) % 10
        return "".join(map(str, d + [check]))


def _ssn9(rng):
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def gen_ssn_keyword(rng):
    v = _ssn9(rng)
    if rng.random() < 0.3:
        v = f"{v[:3]} {v[3:5]} {v[5:]}"
    kw = rng.choice(["ssn: {}", "SSN {}", "my SSN is {}", "Social Security Number: {}", "SS# {}",
                     "social security no. {}", "soc sec {}"])
    return kw.format(v), v, "SSN"


def gen_ssn_sample(rng):
    v = rng.choice(["078-05-1120", "123-45-6789", "219-09-9999", "457-55-5462", "000-12-3456", "666-12-3456"])
    return rng.choice(["it's {} on the form", "SSN {}", "use {} for the test account", "{}"]).format(v), v, "SSN"


def gen_routing(rng):
    v = _aba(rng)
    kw = rng.choice(["routing number: {}", "Routing # {}", "ABA {}", "routing/transit number is {}", "RTN: {}"])
    return kw.format(v), v, "BANK"


def gen_account(rng):
    n = rng.randint(8, 14)
    v = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))
    if rng.random() < 0.3:
        v = " ".join(v[i : i + 4] for i in range(0, len(v), 4))
    kw = rng.choice(["account number: {}", "Account #: {}", "acct no. {}", "checking account {}",
                     "savings account number is {}", "a/c {}", "bank account {}"])
    return kw.format(v), v, "BANK"


def gen_sort_code(rng):
    v = "-".join(f"{rng.randint(0, 99):02d}" for _ in range(3))
    return rng.choice(["sort code {}", "Sort code: {}"]).format(v), v, "BANK"


def gen_dob(rng):
    y, m, d = rng.randint(1940, 2008), rng.randint(1, 12), rng.randint(1, 28)
    v = rng.choice([f"{m:02d}/{d:02d}/{y}", f"{d}.{m}.{y}", f"{y}-{m:02d}-{d:02d}", f"{d} {MONTHS[m - 1]} {y}",
                    f"{MONTHS[m - 1]} {d}, {y}", f"{d}th of {MONTHS[m - 1]} {y}"])
    kw = rng.choice(["DOB: {}", "date of birth {}", "Date of birth: {}", "born on {}", "D.O.B. {}", "birthdate: {}"])
    return kw.format(v), v, "DOB"


GENERATORS = [gen_ssn_keyword, gen_ssn_sample, gen_routing, gen_account, gen_sort_code, gen_dob]
CONTEXTS = [
    "Hi,\n\nHere it is: {v}. Let me know if you need more.\n\nCheers,\nDana",
    "For the form:\n{v}\nThanks!",
    "Sure.\n\nOn Mon, Bob wrote:\n> the details: {v}\n> Bob",
]


def make_canaries(per: int = 20, seed: int = SEED):
    rng = random.Random(seed)
    out = []
    for gen in GENERATORS:
        for ctx in CONTEXTS:
            for _ in range(per):
                phrase, value, label = gen(rng)
                out.append((gen.__name__, ctx.format(v=phrase), value, label))
    return out


def _digits_survive(value: str, out: str) -> bool:
    """Any 5-digit run of the value (letters ignored) left in the output."""
    core = re.sub(r"\D", "", value)
    rest = re.sub(r"\D", "", re.sub(r"<[A-Z]+>", " ", out))
    return any(core[i : i + 5] in rest for i in range(len(core) - 4))


def test_every_planted_keyword_value_is_scrubbed():
    misses = []
    canaries = make_canaries()
    for form, text, value, label in canaries:
        out = scrub(text, protect=["Dana"]).text
        # an account number that passes Luhn is a valid card number too: either placeholder
        ok = {label, "CARD"} if label == "BANK" else {label}
        if not any(f"<{x}>" in out for x in ok) or _digits_survive(value, out):
            misses.append((form, text, out))
    assert len(canaries) == 6 * 3 * 20
    assert not misses, misses[:5]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ssn: 536228421", "ssn: <SSN>"),
        ("My SSN is 078-05-1120, the old one 123-45-6789.", "My SSN is <SSN>, the old one <SSN>."),
        ("SSN:\n536228421 thanks", "SSN:\n<SSN> thanks"),
        ("routing number: 021000021 account no 12345678901", "routing number: <BANK> account no <BANK>"),
        ("sort code 20-00-00, account number 55779911", "sort code <BANK>, account number <BANK>"),
        ("DOB: 04/12/1985", "DOB: <DOB>"),
        ("born on 12 March 1985 in Leeds", "born on <DOB> in Leeds"),
    ],
)
def test_keyword_forms(text, expected):
    assert scrub(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "Order 536228421 shipped on 2026-03-04.",  # 9 digits, no SSN keyword
        "Your account is ready; ticket 123456789.",
        "The account number is in the email I sent.",
        "We met on 04/12/1985, a Tuesday.",  # a date, no birth keyword
        "Routing the call through 3 offices took 45 minutes.",
        "Invoice 2026-000123 and lines 120-145.",
    ],
)
def test_no_keyword_no_replacement(text):
    assert scrub(text).text == text


def _plant(src, dst, phrases):
    """Dana's first messages with one phrase each inserted after the greeting."""
    out = mailbox.mbox(str(dst))
    for i, msg in enumerate(mailbox.mbox(str(src))):
        if i >= len(phrases):
            break
        if msg.is_multipart():
            part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
        else:
            part = msg
        body = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        head, _, rest = body.partition("\n\n")
        del part["Content-Transfer-Encoding"]
        part.set_payload(f"{head}\n\n{phrases[i]}\n\n{rest}", charset="utf-8")
        out.add(msg)
    out.close()


def test_planted_values_never_reach_training_files(tmp_path):
    from mailvoice.dataset.build import DatasetOptions
    from mailvoice.dataset.prepare import prepare

    rng = random.Random(SEED + 1)
    planted = [gen(rng) for _ in range(12) for gen in GENERATORS]  # 72 messages, every form 12 times
    _plant(DANA_MBOX, tmp_path / "dana.mbox", [p for p, _, _ in planted])
    prepare(sources=[str(tmp_path / "dana.mbox")], out_dir=tmp_path / "data", user_emails=[DANA],
            opts=DatasetOptions(min_emails=20), notice=lambda m: None)
    data = tmp_path / "data"
    train, val = (data / "train_alpaca.jsonl").read_text(), (data / "val_alpaca.jsonl").read_text()
    rows = [json.loads(x) for x in (train + val).splitlines()]
    written = "".join(r["output"] + r["input"] + r["instruction"] for r in rows)
    assert val.strip(), "no validation rows"
    for label in ("SSN", "BANK", "DOB"):
        assert f"<{label}>" in written, label
    training_files = [p for p in data.iterdir() if p.is_file() and p.name != "records.jsonl"]
    assert any(p.name == "val_alpaca.jsonl" for p in training_files)
    for p in training_files:
        text = p.read_text(errors="replace")
        for phrase, value, _ in planted:
            assert value not in text, (p.name, phrase)
            compact = re.sub(r"\D", "", value)
            if len(compact) >= 8:  # "536 22 8421", "4455 6677 88" written without their spaces
                assert not re.search(rf"(?<!\d){compact}(?!\d)", text), (p.name, phrase)
