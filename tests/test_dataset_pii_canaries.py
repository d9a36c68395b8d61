"""Planted canaries: every placeholder type in every context, recall ≥ 99.5% asserted.

The suite is generated with a fixed seed: 7 types × several formats × 6 contexts, more than
1,000 planted values. A canary counts as caught when the expected placeholder is in the output
and no 6-character run of the value (letters and digits only, HTML entities decoded) survives,
so a half-replaced wrapped card number is a miss.

False positives: ordinary sentences full of dates, times, prices, order, ticket and version
numbers, postcodes; the bound is at most 2 replacements over the whole suite (we measure 0).
"""

from __future__ import annotations

import base64
import html
import json
import random
import re
import string
from collections import Counter

import phonenumbers
import pytest

from mailvoice.dataset.pii import luhn_ok, scrub

SEED = 20260304
FIRST = ["maria", "jonas", "priya", "kwame", "li", "sofia", "omar", "ingrid", "tomasz", "aiko", "rafael", "nadia"]
LAST = ["okafor", "lindqvist", "ramirez", "novak", "haddad", "fischer", "tanaka", "moreau", "kowalski", "brennan"]
DOMAINS = ["example.com", "mail.co.uk", "acme.io", "uni-bonn.de", "post.org", "gmail.com", "corp.example.net"]


def _rand(rng, chars, n):
    return "".join(rng.choice(chars) for _ in range(n))


# ----------------------------------------------------------------------------- value generators
# Each returns (display text, sensitive core, split points, placeholder). Split points are
# (index, keep_separator): where a line break may fall. Context strings contain no digits.


def gen_email(rng):
    f, l, d = rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)
    local = rng.choice([f"{f}.{l}", f"{f[0]}{l}", f"{f}_{l}{rng.randint(1, 99)}", f"{f}+news", f"{l}.{f}"])
    v = f"{local}@{d}"
    at = v.index("@")
    splits = [(rng.randint(at + 2, len(v) - 2), False), (rng.randint(1, at - 1), False)]
    return v, v, splits, "EMAIL"


def _valid_phone(rng, region):
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    if region == "US":
        area = rng.choice([212, 415, 617, 312, 646, 202, 305, 512, 206, 303])
        while True:
            n = phonenumbers.parse(f"+1{area}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}")
            if phonenumbers.is_valid_number(n):
                return n
    nat = str(example.national_number)
    while True:
        cand = nat[:-4] + f"{rng.randint(0, 9999):04d}"
        n = phonenumbers.parse(f"+{example.country_code}{cand}")
        if phonenumbers.is_valid_number(n):
            return n


def gen_phone(rng):
    region = rng.choice(["US", "US", "US", "GB", "DE", "FR"])
    n = _valid_phone(rng, region)
    if region == "US":
        nat = str(n.national_number)
        a, b, c = nat[:3], nat[3:6], nat[6:]
        v = rng.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"+1 {a} {b} {c}", f"+1-{a}-{b}-{c}"])
    else:
        v = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    seps = [i for i, ch in enumerate(v) if ch in " -." and 3 < i < len(v) - 3]
    return v, v, [(i, True) for i in seps] or [(len(v) // 2, False)], "PHONE"


def _luhn_complete(prefix, length, rng):
    body = prefix + _rand(rng, string.digits, length - len(prefix) - 1)
    for d in string.digits:
        if luhn_ok(body + d):
            return body + d
    raise AssertionError


def gen_card(rng):
    kind = rng.choice(["visa", "mc", "mc2", "amex", "disc"])
    prefix, length = {
        "visa": ("4", 16), "mc": (str(rng.randint(51, 55)), 16), "mc2": (str(rng.randint(2221, 2720)), 16),
        "amex": (rng.choice(["34", "37"]), 15), "disc": ("6011", 16),
    }[kind]  # fmt: skip
    num = _luhn_complete(prefix, length, rng)
    if length == 15:
        groups = [num[:4], num[4:10], num[10:]]
    else:
        groups = [num[i : i + 4] for i in range(0, 16, 4)]
    sep = rng.choice([" ", "-", ""])
    v = sep.join(groups)
    if sep:
        splits = [(i, True) for i, ch in enumerate(v) if ch == sep]
    else:
        splits = [(rng.randint(4, len(v) - 4), False)]
    return v, v, splits, "CARD"


def gen_ssn(rng):
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    a, g, s = f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"
    if len(set(a + g + s)) == 1:
        s = "1234"
    sep = rng.choice(["-", "-", " "])
    v = f"{a}{sep}{g}{sep}{s}"
    return v, v, [(3, True), (6, True)], "SSN"


IBAN_FORMATS = {
    "GB": lambda r: _rand(r, string.ascii_uppercase, 4) + _rand(r, string.digits, 14),
    "DE": lambda r: _rand(r, string.digits, 18),
    "FR": lambda r: _rand(r, string.digits, 10) + _rand(r, string.digits + string.ascii_uppercase, 11)
    + _rand(r, string.digits, 2),
    "NL": lambda r: _rand(r, string.ascii_uppercase, 4) + _rand(r, string.digits, 10),
    "ES": lambda r: _rand(r, string.digits, 20),
}


def gen_iban(rng):
    cc = rng.choice(sorted(IBAN_FORMATS))
    bban = IBAN_FORMATS[cc](rng)
    rearranged = bban + cc + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in rearranged)) % 97
    compact = f"{cc}{check:02d}{bban}"
    if rng.random() < 0.6:
        v = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
        splits = [(i, True) for i, ch in enumerate(v) if ch == " "]
    else:
        v = compact
        splits = [(rng.randint(6, len(v) - 4), False)]
    return v, v, splits, "IBAN"


def gen_ip(rng):
    if rng.random() < 0.7:
        v = ".".join(str(x) for x in [rng.choice([23, 45, 81, 104, 151, 185, 203, 212]), *rng.sample(range(1, 255), 3)])
        return v, v, [(v.index(".") + 1, False)], "IP"
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    groups[0] = "2001"
    groups[1] = "db8"
    v = ":".join(groups) if rng.random() < 0.5 else ":".join(groups[:3]) + "::" + ":".join(groups[6:])
    return v, v, [(v.index(":") + 1, False)], "IP"


def _b64url(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


PASSWORD_PHRASES = [
    "my password is {}", "the password is {}", "pw: {}", "Password: {}", "pwd={}", "new passcode = {}",
    "the wifi password is {}", "password for the portal is {}", "temp password: {}", "PW = {}",
]  # fmt: skip
B62 = string.ascii_letters + string.digits


def gen_secret(rng):
    kind = rng.choice(["aws", "github", "slack", "stripe", "jwt", "pem", "generic", "password", "password"])
    if kind == "aws":
        v = "AKIA" + _rand(rng, string.ascii_uppercase + string.digits, 16)
    elif kind == "github":
        v = "ghp_" + _rand(rng, B62, 36)
    elif kind == "slack":
        v = f"xoxb-{rng.randint(10**10, 10**11)}-{rng.randint(10**11, 10**12)}-" + _rand(rng, B62.lower(), 24)
    elif kind == "stripe":
        v = "sk_live_" + _rand(rng, B62, 24)
    elif kind == "jwt":
        v = ".".join([_b64url({"alg": "HS256", "typ": "JWT"}), _b64url({"sub": _rand(rng, B62, 8)}), _rand(rng, B62, 43)])
    elif kind == "pem":
        body = "\n".join(_rand(rng, B62 + "+/", 64) for _ in range(4))
        v = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
        return v, body.replace("\n", ""), [], "SECRET"
    elif kind == "generic":
        tok = _rand(rng, B62, rng.randint(24, 40))
        phrase = rng.choice(["API key: {}", "token {}", "use {} as the key", "secret={}", "{}"])
        if phrase == "{}" and not (any(c.isdigit() for c in tok) and any(c.isupper() for c in tok)):
            tok = "Q7" + tok
        v = phrase.format(tok)
        i = v.index(tok)
        return v, tok, [(i + len(tok) // 2, False)], "SECRET"
    else:
        pw = rng.choice([
            _rand(rng, B62, rng.randint(8, 14)),
            rng.choice(["sunshine", "hunter", "dragon", "Tr0ub4dor", "S3cure"]) + rng.choice(["", "2", "!", "&3", "99"]),
            _rand(rng, string.ascii_lowercase, 6) + _rand(rng, string.digits, 3),
        ])  # fmt: skip
        v = rng.choice(PASSWORD_PHRASES).format(pw)
        i = v.rindex(pw)
        sp = [(i - 1, True)] if v[i - 1] == " " else []
        return v, pw, sp, "SECRET"
    return v, v, [(rng.randint(8, len(v) - 6), False)], "SECRET"


GENERATORS = {"EMAIL": gen_email, "PHONE": gen_phone, "CARD": gen_card, "SSN": gen_ssn,
              "IBAN": gen_iban, "IP": gen_ip, "SECRET": gen_secret}  # fmt: skip

# ----------------------------------------------------------------------------- contexts

INLINE = [
    "Hi there,\n\nSure, it is {v} as we discussed on the call.\n\nBest,\nDana",
    "Quick one: can you use {v}? Let me know if that works.\n\nCheers,\nDana",
    "Details below ({v}).\nThanks!",
    "Here you go: {v}\n\nDana",
    "For the record the value was {v}, not the old one.",
]
SIGNATURE = "Thanks, talk soon.\n\nCheers,\nDana\n--\nDana Whitfield | Head of Ops, Acme Ltd\nContact: {v}\nLondon"
HTML = [
    "<html><body><p>Hi,</p><p>It is <b>{v}</b> &ndash; ok?</p><p>Dana</p></body></html>",
    "<table><tr><td>Value</td><td>{v}</td></tr></table>",
    "<div>Please see:&nbsp;{v}&nbsp;and reply.</div>",
]
QUOTED = "Sounds good, see below.\n\nOn Mon, Bob Jones wrote:\n> Hi Dana,\n> the details are {v} for now.\n> Bob"
SPLIT = "Hi,\nthe one you need is {a}\n{b} as discussed.\nDana"
QUOTED_SPLIT = "Agreed.\n\nOn Tue, Ann wrote:\n> the one you need is {a}\n> {b} as discussed.\n> Ann"


def _html_escape(v: str, rng) -> str:
    e = html.escape(v, quote=False)
    if rng.random() < 0.5:
        e = e.replace("@", "&#64;")
    if rng.random() < 0.5:
        e = e.replace(" ", "&nbsp;")
    return e


def _split(v: str, splits, rng):
    i, at_sep = rng.choice(splits)
    if at_sep and v[i] == " ":  # a wrap replaces the space
        return v[:i], v[i + 1 :]
    if at_sep:  # a wrap after a hyphen or dot keeps it at the line end
        return v[: i + 1], v[i + 1 :]
    return v[:i], v[i:]


def make_canaries(n_per_type_context: int = 34, seed: int = SEED):
    rng = random.Random(seed)
    out = []
    contexts = ["inline", "signature", "html", "split", "quoted", "quoted_split"]
    for label, gen in GENERATORS.items():
        for ctx in contexts:
            for _ in range(n_per_type_context):
                v, core, splits, placeholder = gen(rng)
                if ctx in ("split", "quoted_split") and not splits:
                    ctx_used = "quoted" if ctx == "quoted_split" else "inline"
                else:
                    ctx_used = ctx
                if ctx_used == "inline":
                    text = rng.choice(INLINE).format(v=v)
                elif ctx_used == "signature":
                    text = SIGNATURE.format(v=v)
                elif ctx_used == "html":
                    text = rng.choice(HTML).format(v=_html_escape(v, rng))
                elif ctx_used == "quoted":
                    text = QUOTED.format(v=v.replace("\n", "\n> "))
                else:
                    a, b = _split(v, splits, rng)
                    text = (SPLIT if ctx_used == "split" else QUOTED_SPLIT).format(a=a, b=b)
                out.append({"type": label, "context": ctx, "text": text, "core": core, "placeholder": placeholder})
    return out


def _alnum(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", s).lower()


def caught(canary, output: str) -> bool:
    if f"<{canary['placeholder']}>" not in output:
        return False
    rest = _alnum(html.unescape(re.sub(r"<[A-Z]+>", " ", output)))
    core = _alnum(canary["core"])
    w = min(6, len(core))
    return not any(core[i : i + w] in rest for i in range(len(core) - w + 1))


@pytest.fixture(scope="module")
def canary_results():
    results = []
    for c in make_canaries():
        out = scrub(c["text"], protect=["Dana Whitfield", "Dana"])
        results.append((c, out.text, caught(c, out.text)))
    return results


def test_suite_size_and_coverage(canary_results):
    assert len(canary_results) >= 1000
    combos = {(c["type"], c["context"]) for c, _, _ in canary_results}
    assert len(combos) == 7 * 6


def test_recall_at_least_99_5_percent(canary_results):
    total = len(canary_results)
    misses = [(c, out) for c, out, ok in canary_results if not ok]
    recall = 1 - len(misses) / total
    by = Counter((c["type"], c["context"]) for c, _ in misses)
    print(f"\ncanary recall: {recall:.4f} ({total - len(misses)}/{total}); misses by type/context: {dict(by)}")
    detail = "\n---\n".join(f"{c['type']}/{c['context']}: {c['text']!r}\n=> {out!r}" for c, out in misses[:10])
    assert recall >= 0.995, detail


def test_every_type_recall_at_least_98_percent(canary_results):
    per = Counter(c["type"] for c, _, _ in canary_results)
    hit = Counter(c["type"] for c, _, ok in canary_results if ok)
    for label, n in per.items():
        assert hit[label] / n >= 0.98, (label, hit[label], n)


def test_user_name_and_signoff_survive(canary_results):
    for c, out, _ in canary_results:
        if "Dana" in c["text"]:
            assert "Dana" in out
        if "Dana Whitfield" in c["text"]:
            assert "Dana Whitfield" in out


# ----------------------------------------------------------------------------- false positives

ORDINARY = [
    "Let's meet on 2026-03-04 at 10:30 in the small room.",
    "The deadline moved to 03/04/2026, so we have a bit more time.",
    "Can we push the call to 14:45 on Thursday 12 March?",
    "The quote came back at £1,250.00 including VAT, which is fine.",
    "It's only $19.99 a month, or $199 for the year.",
    "Total was €3.450,00 last quarter and 12.5% up on the year.",
    "Your Order #123456789 has shipped and should arrive by Friday.",
    "Order no. 4503217789 was refunded on 2025-11-30.",
    "I've raised JIRA-1234 and linked it to PROJ-98765.",
    "Ticket INC0012345 is still open; ServiceNow says priority 2.",
    "We upgraded to version 3.11.4 and then 2.13.0 broke the build.",
    "Release v1.2.3-rc.1 is out; see build 20260304.1 for details.",
    "The office is at 221B Baker Street, London NW1 6XE.",
    "Send it to the SW1A 1AA address, not EC1A 1BB.",
    "Room 4.12, floor 4, building 2. Parking bay 117.",
    "We're expecting 1,200 attendees, 35 speakers and 4 tracks.",
    "Flight BA 287 leaves at 18:05 from terminal 5, gate B34.",
    "Invoice INV-2026-0042 for 7 hours at 95.00/h is attached.",
    "The meeting ran from 9:00 to 11:30 with a break at 10:15.",
    "Q3 revenue was 4.2m, up from 3.9m; margin 23.5%.",
    "Page 12 of the report, section 3.2.1, table 7.",
    "Batch 2026/03 of the newsletter went to 15,000 subscribers.",
    "The temperature hit 31.5 degrees on 14 July 2025.",
    "Please reference PO 7781-2026 and cost centre 4410.",
    "I'll be out 23-27 March, back on the 30th.",
    "Thanks for your password reset email, it worked.",
    "The password is on the sticky note you gave me, I'll change it.",
    "I forgot my password again, can you reset it?",
    "The new portal needs a passcode; IT will send it separately.",
    "Our tracking code is shown in the shipping email.",
    "Call me tomorrow after 5, I'm in meetings until then.",
    "Score was 3-1 in the end, great match.",
    "We sold 250 units at 12.50 each, so 3,125.00 in total.",
    "The build number is 4821 and the commit is from yesterday.",
    "Use the coupon SPRING2026 for 20% off.",
    "ISBN 978-0-13-468599-1 is the second edition.",
    "The ratio is 16:9 and the resolution 1920x1080.",
    "Order 1234 5678 is delayed; the other one, 8765 4321, arrived.",
    "Reference number 2026-000123 for your claim.",
    "My flight confirmation is ABC123 and seat 14C.",
    "The package weighs 2.5 kg and measures 30 x 20 x 10 cm.",
    "Version 10.0.19045 of Windows is what the laptop runs.",
    "Dial-in is on the invite; meeting ID is in the calendar.",
    "Kind regards, and see you at 8:30 sharp on 1 April.",
    "It costs USD 1,499.00 per seat per year, billed annually.",
    "Employee number 004512 is on the payslip.",
    "CamelCaseIdentifiersAreFine and so are snake_case_names_like_this_one.",
    "The configuration file is settings.production.yaml in the repo.",
    "Lines 120-145 of the draft need a rewrite before 5pm.",
    "Our sprint 42 retro is on 2026-04-01 at 15:00.",
]


def test_false_positives_on_ordinary_text():
    total = Counter()
    flagged = []
    for s in ORDINARY:
        out = scrub(s)
        if out.counts:
            flagged.append((s, out.text))
        total.update(out.counts)
    print(f"\nFP replacements on {len(ORDINARY)} ordinary sentences: {sum(total.values())} {dict(total)}")
    assert sum(total.values()) <= 2, flagged


def test_ordinary_text_in_one_message_with_line_breaks():
    # the joined views (line breaks glued) must not create numbers from neighbouring lines
    text = "\n".join(ORDINARY)
    out = scrub(text)
    assert sum(out.counts.values()) <= 2, out.counts
