"""Property: scrubbing takes the values and nothing else (issue 18 item 1).

Generated messages put URLs, addresses and numbers at line ends, followed by blank lines or not,
quoted or not, by ordinary lines: sign-offs, greetings, capitalised and lower-case words, dates.
Every word of those ordinary lines survives, in order; no span crosses a blank line; every planted
URL and address is gone. Bounded (``max_examples``) so the suite stays fast.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailvoice.dataset.pii import find, scrub

WORDS = ["Thanks,", "Best", "regards,", "Cheers", "Pat", "David", "Date:", "Not", "supplied", "Microsoft",
         "Tuesday", "said", "and", "the", "see", "you", "then.", "Hi", "Dear", "Kind", "I'm", "Off-Topic",
         "ActiveBuddy", "at", "to", "contact", "write", "Sincerely,", "ok", "Love,", "x", "more", "here:"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "uni-bonn.de", "acme.io"]

word = st.sampled_from(WORDS)
url = st.builds(lambda d, p, q: f"https://{d}/{p}" + (f"?id={q}" if q else ""),
                st.sampled_from(DOMAINS), st.from_regex(r"[a-z]{1,8}(/[a-z0-9]{1,6}){0,2}", fullmatch=True),
                st.integers(0, 999))
address = st.builds(lambda l, d: f"{l}@{d}", st.from_regex(r"[a-z]{2,8}(\.[a-z]{2,6})?", fullmatch=True),
                    st.sampled_from(DOMAINS))
number = st.from_regex(r"[0-9]{1,4}", fullmatch=True)
value = st.one_of(url.map(lambda v: ("URL", v)), address.map(lambda v: ("EMAIL", v)), number.map(lambda v: ("NUM", v)))
punct = st.sampled_from(["", "", ".", ",", ")", ":", "!"])
prose_line = st.lists(word, min_size=1, max_size=5).map(" ".join)
quote = st.sampled_from(["", "", "> "])


@st.composite
def message(draw):
    """(text, prose words in order, planted URL/address values)."""
    lines, words, planted = [], [], []
    for _ in range(draw(st.integers(1, 4))):
        q = draw(quote)
        lead = draw(prose_line)
        kind, v = draw(value)
        p = draw(punct)
        opener = "(" if p == ")" else ""
        lines.append(f"{q}{lead} {opener}{v}{p}")
        words += lead.split()
        if kind != "NUM":
            planted.append(v)
        for _ in range(draw(st.integers(0, 2))):  # blank lines between
            lines.append(q.rstrip())
        for _ in range(draw(st.integers(1, 2))):
            follow = draw(prose_line)
            lines.append(f"{q}{follow}")
            words += follow.split()
    return "\n".join(lines), words, planted


def _in_order(words, text):
    pos = 0
    for w in words:
        i = text.find(w, pos)
        if i < 0:
            return w
        pos = i + len(w)
    return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message())
def test_only_values_are_replaced(msg):
    text, words, planted = msg
    out = scrub(text).text
    missing = _in_order(words, out)
    assert missing is None, (missing, text, out)
    for v in planted:
        assert v not in out, (v, out)
    for s, e, _ in find(text):
        assert not re.search(r"\n[ \t>]*\n", text[s:e]), (text[s:e], text)
