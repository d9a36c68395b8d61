#!/usr/bin/env python3
"""Generate the demo mailboxes that ship with mailvoice.

Writes two mbox files (default directory ``data-samples/mailboxes``):

``dana-sent.mbox``
    The "Sent" folder of Dana Whitfield <dana@willowcreek-design.example>, a
    fictional independent garden designer with a strong, consistent voice
    ("Hi Sam!" / "Morning Sam —", em-dashes, short punchy sentences, British
    spelling, pet phrases, garden metaphors, "Cheers,\\nDana" or
    "Warmly,\\nDana" for clients).  About 60% of her mails are replies with a
    quoted part in Gmail, Apple Mail, Outlook or "-----Original Message-----"
    form, written by the other party in their own neutral style.  The folder
    also holds deliberate noise for the cleaning stage:

    * a few received messages that are *not* from Dana,
    * two auto-replies from Dana's address (``Auto-Submitted: auto-replied``),
    * a few multipart/alternative messages with an HTML part,
    * a few threads (shared ``References`` root),
    * planted fake PII in three bodies (see ``PLANTED_PII``).

``contrast-sent.mbox``
    The sent mail of Marcus Bell <marcus.bell@northgate-logistics.example>, a
    formal, long-winded operations manager (American spelling, numbered
    lists, "Kind regards", no em-dashes, no exclamation marks).  Used as the
    "not Dana" class for style classifiers.

What the people write (contacts, topics, phrases, threads) is data, in
``sample-mail.json`` next to this script; this file is the logic that picks and
assembles it.  Everything is derived from fixed seeds: running the script twice
produces byte-identical files (``From `` separator dates come from the message
dates, never from the clock).  Standard library only.

Usage::

    python scripts/make-sample-mail.py [--out DIR]

or, from Python::

    mod.generate(Path("out"), dana_count=150, marcus_count=90) -> dict
"""

import argparse
import email.policy
import email.utils
import html
import json
import mailbox
import os
import random
import re
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import NamedTuple

DEFAULT_OUT = Path("data-samples/mailboxes")
DANA_FILE = "dana-sent.mbox"
MARCUS_FILE = "contrast-sent.mbox"

DANA_SEED = 20250107
MARCUS_SEED = 20250214

START = datetime(2025, 1, 1)
END = datetime(2026, 6, 30, 23, 59)

POLICY = email.policy.default  # linesep "\n", utf-8 aware

DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
             "Saturday", "Sunday"]
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July",
               "August", "September", "October", "November", "December"]


class Person(NamedTuple):
    name: str
    email: str
    first: str          # what the mailbox owner calls them
    group: str          # decides topics, sign-off, writing style
    sign: str = ""      # how they sign their own mail
    org: str = ""
    project: str = ""   # client job, for Dana's clients
    short: str = ""
    weight: int = 3

    @property
    def addr(self) -> str:
        return f"{self.name} <{self.email}>"

    @property
    def domain(self) -> str:
        return self.email.split("@", 1)[1]


DANA = Person("Dana Whitfield", "dana@willowcreek-design.example", "Dana",
              "self", "Dana", "Willow Creek Garden Design")
MARCUS = Person("Marcus Bell", "marcus.bell@northgate-logistics.example",
                "Marcus", "self", "Marcus", "Northgate Logistics, Inc.")

# --------------------------------------------------------------------------
# The data: sample-mail.json next to this script
# --------------------------------------------------------------------------
# Everything the two writers say lives in the data file, keyed by the lower-
# cased constant names below: contacts (Person fields), topics (subjects, what
# the other person wrote for replies, openers, middle sentences and closing
# questions; "{order_list}" expands to a multi-line list), word lists, and the
# threads: Dana's (contact, subject, stages, quote style, first day or null),
# a stage being (topic, index of the other party's message or null, index of
# Dana's opener among the reply openers or null); Marcus's (contact, subject,
# topics, quote style). PLANTED_PII is fake personal data planted in a few of
# Dana's bodies, for scrubbing tests; Dana is "away" in the HOLIDAYS windows:
# her two auto-replies fall inside them and none of her hand-written mail does.

DATA = json.loads(Path(__file__).with_name("sample-mail.json").read_text(encoding="utf-8"))


def _tuples(rows: list) -> list:
    return [tuple(r) for r in rows]


def _day(iso):
    return datetime.fromisoformat(iso) if iso else None


DANA_SIGNATURE = DATA["dana_signature"]
PLANTED_PII = DATA["planted_pii"]
HOLIDAYS = [(_day(a), _day(b), back) for a, b, back in DATA["holidays"]]
DANA_CONTACTS = [Person(**p) for p in DATA["dana_contacts"]]
CONTACT = {p.name: p for p in DANA_CONTACTS}
SEASONS = {int(month): season for month, season in DATA["seasons"].items()}
DANA_THREADS = [(name, subject, _tuples(stages), style, _day(start))
                for name, subject, stages, style, start in DATA["dana_threads"]]
DANA_PII = _tuples(DATA["dana_pii"])
MARCUS_CONTACTS = [Person(**p) for p in DATA["marcus_contacts"]]
MARCUS_THREADS = _tuples(DATA["marcus_threads"])
(GROUP_TOPICS, PLANTS, PLACES, MATERIALS, MULCHES, TIMES, THINGS, EVENTS,
 REFERRALS, NEXT_SEASON, WEATHER, REPLY_OPENERS, PET_PHRASES, QUICK_THOUGHTS,
 METAPHORS, DANA_TOPICS, SITES, CARRIERS, MARCUS_TOPICS, MARCUS_CONTACT_TOPICS,
 MARCUS_DOCS, MARCUS_OPENERS, MARCUS_REPLY_OPENERS, MARCUS_CLOSINGS,
 MARCUS_EXTRA, MARCUS_SHORT) = (DATA[k.lower()] for k in (
    "GROUP_TOPICS", "PLANTS", "PLACES", "MATERIALS", "MULCHES", "TIMES",
    "THINGS", "EVENTS", "REFERRALS", "NEXT_SEASON", "WEATHER", "REPLY_OPENERS",
    "PET_PHRASES", "QUICK_THOUGHTS", "METAPHORS", "DANA_TOPICS", "SITES",
    "CARRIERS", "MARCUS_TOPICS", "MARCUS_CONTACT_TOPICS", "MARCUS_DOCS",
    "MARCUS_OPENERS", "MARCUS_REPLY_OPENERS", "MARCUS_CLOSINGS", "MARCUS_EXTRA",
    "MARCUS_SHORT"))


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

WORD_RE = re.compile(r"[a-z0-9']+")


def words(text: str) -> set:
    return set(WORD_RE.findall(text.lower()))


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _last_sunday(year: int, month: int) -> datetime:
    d = datetime(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    while d.weekday() != 6:
        d -= timedelta(days=1)
    return d


def _nth_sunday(year: int, month: int, n: int) -> datetime:
    d = datetime(year, month, 1)
    while d.weekday() != 6:
        d += timedelta(days=1)
    return d + timedelta(days=7 * (n - 1))


def london(naive: datetime) -> datetime:
    """Attach Europe/London's offset (GMT/BST) to a local wall time."""
    start = _last_sunday(naive.year, 3).replace(hour=1)
    end = _last_sunday(naive.year, 10).replace(hour=1)
    hours = 1 if start <= naive < end else 0
    return naive.replace(tzinfo=timezone(timedelta(hours=hours)))


def chicago(naive: datetime) -> datetime:
    """Attach America/Chicago's offset (CST/CDT) to a local wall time."""
    start = _nth_sunday(naive.year, 3, 2).replace(hour=2)
    end = _nth_sunday(naive.year, 11, 1).replace(hour=2)
    hours = -5 if start <= naive < end else -6
    return naive.replace(tzinfo=timezone(timedelta(hours=hours)))


def in_holiday(naive: datetime) -> bool:
    return any(a <= naive < b for a, b, _ in HOLIDAYS)


def gmail_attr(dt: datetime, who: Person) -> str:
    return (f"On {DAY_NAMES[dt.weekday()][:3]}, {dt.day} "
            f"{MONTH_NAMES[dt.month - 1][:3]} {dt.year} at {dt:%H:%M}, "
            f"{who.name} <{who.email}> wrote:")


def apple_attr(dt: datetime, who: Person) -> str:
    return (f"On {dt.day} {MONTH_NAMES[dt.month - 1][:3]} {dt.year}, at "
            f"{dt:%H:%M}, {who.name} <{who.email}> wrote:")


def us_gmail_attr(dt: datetime, who: Person) -> str:
    hour = dt.hour % 12 or 12
    ampm = "AM" if dt.hour < 12 else "PM"
    return (f"On {DAY_NAMES[dt.weekday()][:3]}, "
            f"{MONTH_NAMES[dt.month - 1][:3]} {dt.day}, {dt.year} at "
            f"{hour}:{dt:%M} {ampm} {who.name} <{who.email}> wrote:")


def uk_sent(dt: datetime) -> str:
    return (f"{DAY_NAMES[dt.weekday()]}, {dt.day} {MONTH_NAMES[dt.month - 1]} "
            f"{dt.year} {dt:%H:%M}")


def uk_sent_short(dt: datetime) -> str:
    return f"{dt.day:02d} {MONTH_NAMES[dt.month - 1]} {dt.year} {dt:%H:%M}"


def us_sent(dt: datetime) -> str:
    hour = dt.hour % 12 or 12
    ampm = "AM" if dt.hour < 12 else "PM"
    return (f"{DAY_NAMES[dt.weekday()]}, {MONTH_NAMES[dt.month - 1]} "
            f"{dt.day}, {dt.year} {hour}:{dt:%M} {ampm}")


def quote_lines(text: str, width: int = 72) -> str:
    """Gmail/Apple style '> ' quoting; wraps prose, keeps nested quotes."""
    out = []
    for line in text.split("\n"):
        if not line:
            out.append(">")
        elif line.startswith(">"):
            out.append(">" + line)
        elif len(line) > width:
            out.extend("> " + part for part in textwrap.wrap(
                line, width, break_long_words=False, break_on_hyphens=False))
        else:
            out.append("> " + line)
    return "\n".join(out)


def make_msgid(rng: random.Random, dt: datetime, domain: str) -> str:
    stamp = dt.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"<{stamp}.{rng.getrandbits(40):010x}@{domain}>"


def other_msgid(rng: random.Random, who: Person) -> str:
    token = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
                    for _ in range(16))
    return f"<{token}.{rng.randrange(10**5, 10**6)}@{who.domain}>"


def to_html(blocks: list, signature, attr, quoted) -> str:
    """A Gmail-like HTML twin of the plain text part."""
    esc = html.escape
    parts = ['<div dir="ltr">']
    for block in blocks:
        parts.append("<p>" + "<br>".join(esc(x) for x in block.split("\n"))
                     + "</p>")
    if signature:
        parts.append('<div class="gmail_signature">-- <br>'
                     + "<br>".join(esc(x) for x in signature.split("\n"))
                     + "</div>")
    parts.append("</div>")
    if quoted:
        parts.append('<br><div class="gmail_quote"><div dir="ltr" '
                     f'class="gmail_attr">{esc(attr)}<br></div>')
        parts.append('<blockquote class="gmail_quote" style="margin:0px 0px '
                     '0px 0.8ex;border-left:1px solid rgb(204,204,204);'
                     'padding-left:1ex">')
        for para in quoted.split("\n\n"):
            parts.append('<div dir="ltr">' + "<br>".join(
                esc(x) for x in para.split("\n")) + "</div><br>")
        parts.append("</blockquote></div>")
    return "<html><body>" + "\n".join(parts) + "</body></html>\n"


def build_message(*, sender: Person, to: Person, subject: str,
                  date: datetime, msgid: str, text: str,
                  in_reply_to: str | None = None, references=None,
                  html_text: str | None = None, extra_headers=(),
                  boundary: str | None = None) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender.addr
    msg["To"] = to.addr
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = msgid
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    for key, value in extra_headers:
        msg[key] = value
    msg.set_content(text)
    if html_text is not None:
        msg.add_alternative(html_text, subtype="html")
        msg.set_boundary(boundary)
    utc = date.astimezone(timezone.utc)
    msg.set_unixfrom(f"From {sender.email} {time.asctime(utc.timetuple())}")
    for line in text.split("\n"):
        if line.startswith("From "):
            raise ValueError(f"body line would be mangled by mbox: {line!r}")
    return msg


def write_mbox(path: Path, messages: list) -> None:
    """Write all messages to ``path`` atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        tmp.unlink()
    box = mailbox.mbox(str(tmp), create=True)
    try:
        for msg in messages:
            box.add(msg)
        box.flush()
    finally:
        box.close()
    os.replace(tmp, path)


def openers(options: list, is_reply: bool) -> list:
    """Openers usable for a reply ("R:" marks reply-only, "N:" new-only)."""
    out = []
    for o in options:
        tag, _, rest = o.partition(":") if o[:2] in ("R:", "N:") else ("", "", o)
        if tag == "" or (tag == "R") == is_reply:
            out.append(rest)
    return out


def earlier_time(rng: random.Random, when: datetime, first_hour: int,
                 last_hour: int, max_days: int = 2) -> datetime:
    """A plausible waking-hours time, before ``when``, for the mail replied to."""
    for _ in range(50):
        day = when - timedelta(days=rng.randint(0, max_days))
        cand = day.replace(hour=rng.randrange(first_hour, last_hour),
                           minute=rng.randrange(60), second=rng.randrange(60))
        if timedelta(minutes=20) <= when - cand:
            return cand
    return when - timedelta(hours=3)


def between(rng: random.Random, lo: datetime, hi: datetime, first_hour: int,
            last_hour: int) -> datetime:
    """A waking-hours time strictly between two messages of a thread."""
    for _ in range(50):
        cand = lo + (hi - lo) * rng.uniform(0.2, 0.9)
        cand = cand.replace(hour=rng.randrange(first_hour, last_hour),
                            minute=rng.randrange(60), second=rng.randrange(60),
                            microsecond=0)
        if lo + timedelta(minutes=20) <= cand <= hi - timedelta(minutes=20):
            return cand
    return (lo + (hi - lo) / 2).replace(microsecond=0)


def sentence(text: str) -> str:
    """Capitalise a filled-in template ("lavender ..." -> "Lavender ...")."""
    return text[:1].upper() + text[1:] if text[:1].islower() else text


class Item(NamedTuple):
    when: datetime
    msg: EmailMessage


# --------------------------------------------------------------------------
# Dana
# --------------------------------------------------------------------------

class DanaWriter:
    HOUR_WEIGHTS = {6: 3, 7: 8, 8: 9, 9: 8, 10: 6, 11: 5, 12: 4, 13: 4, 14: 5,
                    15: 5, 16: 5, 17: 6, 18: 7, 19: 6, 20: 4, 21: 2}

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.accepted = []   # word sets of Dana's own text, for near-dups
        self.ids = set()
        self.stats = {"replies": 0, "quoted_replies": 0, "new": 0,
                      "html": 0, "signature": 0, "iphone": 0,
                      "pii_planted": 0, "threads": 0, "thread_messages": 0,
                      "received": 0, "auto_replies": 0}

    # -- dates -------------------------------------------------------------
    def random_time(self, day: datetime) -> datetime:
        rng = self.rng
        hours = list(self.HOUR_WEIGHTS)
        hour = rng.choices(hours, [self.HOUR_WEIGHTS[h] for h in hours])[0]
        return day.replace(hour=hour, minute=rng.randrange(60),
                           second=rng.randrange(60))

    def random_date(self, lo: datetime = START, hi: datetime = END):
        rng = self.rng
        span = (hi - lo).days
        while True:
            day = (lo + timedelta(days=rng.randrange(span + 1))).replace(
                hour=0, minute=0, second=0)
            if day.weekday() >= 5 and rng.random() > 0.35:
                continue
            naive = self.random_time(day)
            if lo <= naive <= hi and not in_holiday(naive):
                return london(naive)

    def msgid(self, dt: datetime) -> str:
        while True:
            mid = make_msgid(self.rng, dt, DANA.domain)
            if mid not in self.ids:
                self.ids.add(mid)
                return mid

    # -- content -----------------------------------------------------------
    def context(self, who: Person, when: datetime,
                job: str | None = None) -> dict:
        rng = self.rng
        plants = rng.sample(PLANTS, 3)
        places = rng.sample(PLACES, 2)
        materials = rng.sample(MATERIALS, 2)
        days = rng.sample(DAY_NAMES[:6], 2)
        clients = [p for p in DANA_CONTACTS if p.group == "client"]
        job = job or rng.choice(clients).short
        season = SEASONS[when.month]
        quarter_no = (when.month - 1) // 3 + 1
        order = rng.sample(PLANTS, rng.randint(2, 4))
        order_list = "\n".join(
            f"- {rng.choice([3, 5, 6, 9, 10, 12, 15, 20, 24, 30])} x {p} "
            f"({rng.choice(['9cm', '1L', '2L', '3L', '5L'])})" for p in order)
        ctx = {
            "first": who.first,
            "project": who.project or f"the {job} job",
            "short": who.short or job,
            "job": job,
            "plant": plants[0], "plant2": plants[1], "plant3": plants[2],
            "place": places[0], "place2": places[1],
            "material": materials[0], "material2": materials[1],
            "mulch": rng.choice(MULCHES),
            "day": days[0], "day2": days[1],
            "time": rng.choice(TIMES),
            "amount": f"£{rng.randrange(18, 260) * 50:,}",
            "inv": f"WC-{when.year}-{rng.randrange(1, 140):03d}",
            "qty": str(rng.choice([6, 8, 12, 15, 18, 24, 30, 40])),
            "qty2": str(rng.choice([4, 6, 10, 12, 20])),
            "month": MONTH_NAMES[when.month - 1],
            "month_next": MONTH_NAMES[when.month % 12],
            "season": season, "season_next": NEXT_SEASON[season],
            "thing": rng.choice(THINGS),
            "event": rng.choice(EVENTS),
            "referral": rng.choice(REFERRALS),
            "quarter": f"Q{quarter_no}",
            "miles": str(rng.randrange(380, 1900)),
            "order_list": order_list,
        }
        ctx["quick"] = rng.choice(QUICK_THOUGHTS).format_map(ctx)
        ctx.update(PLANTED_PII)
        return ctx

    def incoming_text(self, who: Person, topic: str, ctx: dict,
                      index: int | None = None) -> str:
        """What the other person wrote, in their own (neutral) style."""
        rng = self.rng
        options = DANA_TOPICS[topic]["incoming"]
        body = (options[index] if index is not None
                else rng.choice(options)).format_map(ctx)
        g = who.group
        if g == "family":
            if who.first == "Mum":
                return f"Hello love,\n\n{body}\n\nLove,\nMum"
            return f"D,\n\n{body}\n\nR"
        if g == "friend":
            hello = rng.choice(["Hey Dana", "Hi D,", "Dana,"])
            return f"{hello}\n\n{body}\n\n{who.sign}"
        if g in ("nursery", "stone", "trade"):
            if rng.random() < 0.5:
                return (f"Hi Dana\n\n{body}\n\nRegards\n{who.name}\n{who.org}")
            return f"Dana,\n\n{body}\n\n{who.sign}"
        if g in ("press", "community"):
            return (f"Dear Dana,\n\n{body}\n\nWith best wishes,\n{who.name}\n"
                    f"{who.org}")
        hello = rng.choice(["Hi Dana,", "Hello Dana,", "Hi Dana,"])
        bye = rng.choice(["Thanks,", "Best,", "Many thanks,", "Best wishes,"])
        tail = f"\n{who.org}" if who.org and rng.random() < 0.5 else ""
        return f"{hello}\n\n{body}\n\n{bye}\n{who.sign}{tail}"

    def paragraph_count(self) -> int:
        return self.rng.choices(
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            [9, 14, 19, 18, 14, 9, 6, 4, 2, 2, 1, 2])[0]

    def own_text(self, who: Person, topic: str, ctx: dict, when: datetime,
                 is_reply: bool, extra: str | None = None,
                 opener: int | None = None) -> list:
        """Dana's text above any quote, as blocks (paragraphs)."""
        rng = self.rng
        T = DANA_TOPICS[topic]
        fill = lambda s: sentence(s.format_map(ctx))  # noqa: E731
        n = self.paragraph_count()
        season = SEASONS[when.month]

        usable = openers(T["open"], is_reply)
        lead = fill(usable[opener] if opener is not None
                    else rng.choice(usable))
        if is_reply and rng.random() < 0.45:
            lead = rng.choice(REPLY_OPENERS) + " " + lead
        middles = [fill(s) for s in rng.sample(T["middle"], len(T["middle"]))]
        extras = []
        if rng.random() < 0.6:
            extras.append(fill(rng.choice(PET_PHRASES)))
        if rng.random() < 0.35:
            extras.append(rng.choice(METAPHORS))
        if rng.random() < 0.3:
            extras.append(rng.choice(WEATHER[season]))
        pool = middles[:]
        for e in extras:
            pool.insert(rng.randrange(len(pool) + 1), e)
        if extra:
            pool.insert(0, extra)
        ask = fill(rng.choice(T["ask"])) if rng.random() < 0.7 else None

        paras = []
        sentences = [lead] + pool
        budget = n - (1 if ask and n > 1 else 0)
        i = 0
        while len(paras) < budget and i < len(sentences):
            take = 2 if (rng.random() < 0.4 and i + 1 < len(sentences)
                         and "\n" not in sentences[i]
                         and "\n" not in sentences[i + 1]) else 1
            paras.append(" ".join(sentences[i:i + take]))
            i += take
        if extra and not any(extra in p for p in paras):
            paras.append(extra)
        if ask:
            if n == 1 and paras:
                paras[-1] = paras[-1] + " " + ask
            else:
                paras.append(ask)

        r = rng.random()
        if r < 0.06:
            greeting = None
        elif when.hour < 12 and r < 0.5:
            greeting = f"Morning {who.first} —"
        else:
            greeting = f"Hi {who.first}!"
        blocks = []
        if greeting:
            if n <= 2 and rng.random() < 0.3:
                paras[0] = f"{greeting} {paras[0]}"
            else:
                blocks.append(greeting)
        blocks.extend(paras)

        warm = who.group == "client" and rng.random() < 0.85
        word = "Warmly," if warm else "Cheers,"
        kiss = who.group in ("friend", "family") and rng.random() < 0.75
        r = rng.random()
        if r < 0.05:
            blocks.append("Dana x" if kiss else "D")
        else:
            blocks.append(f"{word}\nDana" + (" x" if kiss else ""))
        return blocks

    def choose_own(self, *args, threshold: float = 0.6, tries: int = 60,
                   **kwargs):
        """Draw Dana's text until it is not a near-duplicate of earlier mail."""
        best = None
        for _ in range(tries):
            blocks = self.own_text(*args, **kwargs)
            ws = words("\n\n".join(blocks))
            worst = max((jaccard(ws, o) for o in self.accepted), default=0.0)
            if best is None or worst < best[0]:
                best = (worst, blocks, ws)
            if worst < threshold:
                break
        self.accepted.append(best[2])
        return best[1]

    def compose(self, *, who: Person, topic: str, when: datetime,
                subject: str, ctx: dict, is_reply: bool, style: str = "none",
                incoming: tuple | None = None, references=(),
                html_part: bool = False, extra: str | None = None,
                opener: int | None = None):
        """Return (EmailMessage, full plain text)."""
        rng = self.rng
        blocks = self.choose_own(who, topic, ctx, when, is_reply, extra=extra,
                                 opener=opener)
        own = "\n\n".join(blocks)
        tail = ""
        signature = None
        r = rng.random()
        if r < 0.30:
            signature = DANA_SIGNATURE
            tail = "\n\n-- \n" + DANA_SIGNATURE
            self.stats["signature"] += 1
        elif r < 0.37 and not html_part:
            tail = "\n\nSent from my iPhone"
            self.stats["iphone"] += 1
        text = own + tail

        attr = quoted = None
        in_reply_to = None
        if incoming is not None:
            in_when, in_who, in_id, in_subject, in_text = incoming
            in_reply_to = in_id
            if style in ("gmail", "apple"):
                attr = (gmail_attr if style == "gmail" else apple_attr)(
                    in_when, in_who)
                shown = attr
                if len(attr) > 78 and rng.random() < 0.5:
                    shown = attr[:-len(" wrote:")] + "\nwrote:"
                text += "\n\n" + shown + "\n" + quote_lines(in_text)
                quoted = in_text
            elif style == "outlook":
                text += ("\n\n________________________________\n"
                         f"From: {in_who.addr}\nSent: {uk_sent(in_when)}\n"
                         f"To: {DANA.addr}\nSubject: {in_subject}\n\n"
                         + in_text)
            elif style == "original":
                text += ("\n\n-----Original Message-----\n"
                         f"From: {in_who.addr}\n"
                         f"Sent: {uk_sent_short(in_when)}\n"
                         f"To: {DANA.email}\nSubject: {in_subject}\n\n"
                         + in_text)
            if style != "none":
                self.stats["quoted_replies"] += 1

        html_text = None
        boundary = None
        if html_part:
            html_text = to_html(blocks, signature, attr, quoted)
            boundary = f"000000000000{self.rng.getrandbits(48):012x}"
            self.stats["html"] += 1
        refs = list(references)
        if in_reply_to and in_reply_to not in refs:
            refs.append(in_reply_to)
        msg = build_message(
            sender=DANA, to=who, subject=subject, date=when,
            msgid=self.msgid(when), text=text + "\n",
            in_reply_to=in_reply_to, references=refs or None,
            html_text=html_text, boundary=boundary)
        self.stats["replies" if is_reply else "new"] += 1
        return msg, text

    def pick_contact(self) -> Person:
        return self.rng.choices(DANA_CONTACTS,
                                [p.weight for p in DANA_CONTACTS])[0]

    def incoming_for(self, who, topic, ctx, when, subject):
        in_when = earlier_time(self.rng, when, 7, 22)
        return (in_when, who, other_msgid(self.rng, who), subject,
                self.incoming_text(who, topic, ctx))

    # -- message kinds -----------------------------------------------------
    def standalone(self, is_reply: bool, html_part: bool = False,
                   pii=None) -> Item:
        rng = self.rng
        extra = None
        if pii:
            who, topic = CONTACT[pii[0]], pii[1]
        else:
            while True:
                who = self.pick_contact()
                topic = rng.choice(GROUP_TOPICS[who.group])
                if openers(DANA_TOPICS[topic]["open"], is_reply):
                    break
        when = self.random_date()
        ctx = self.context(who, when)
        if pii:
            extra = pii[2].format_map(ctx)
            self.stats["pii_planted"] += 1
        base = rng.choice(DANA_TOPICS[topic]["subjects"]).format_map(ctx)
        incoming = None
        style = "none"
        if is_reply:
            if html_part:
                style = "gmail"
            else:
                style = rng.choices(
                    ["gmail", "apple", "outlook", "original", "none"],
                    [50, 10, 17, 15, 8])[0]
            subject = "Re: " + base
            incoming = self.incoming_for(who, topic, ctx, when, base)
        else:
            subject = base
        msg, _ = self.compose(who=who, topic=topic, when=when,
                              subject=subject, ctx=ctx, is_reply=is_reply,
                              style=style, incoming=incoming,
                              html_part=html_part, extra=extra)
        return Item(when, msg)

    def thread(self, name: str, subject: str, stages: list, style: str,
               start: datetime | None = None):
        rng = self.rng
        who = CONTACT[name]
        self.stats["threads"] += 1
        if start is None:
            when = self.random_date(START, END - timedelta(days=60))
        else:
            when = london(self.random_time(start))
        job = next((p.short for p in DANA_CONTACTS
                    if p.group == "client" and p.short in subject), None)
        chain = []
        prev = None   # (when, full text) of Dana's previous message
        items = []
        for k, (topic, in_index, opener) in enumerate(stages):
            if k:
                day = when + timedelta(days=rng.randint(2, 9))
                naive = self.random_time(day.replace(tzinfo=None))
                while in_holiday(naive):
                    naive += timedelta(days=3)
                when = london(naive)
            ctx = self.context(who, when, job)
            job = ctx["job"]
            body = self.incoming_text(who, topic, ctx, in_index)
            if prev is None:
                in_when = earlier_time(rng, when, 7, 22)
            else:
                in_when = between(rng, prev[0], when, 7, 22)
                if style in ("gmail", "apple"):
                    attr = (gmail_attr if style == "gmail" else apple_attr)(
                        prev[0], DANA)
                    body += "\n\n" + attr + "\n" + quote_lines(prev[1])
                else:
                    body += ("\n\n-----Original Message-----\n"
                             if style == "original" else
                             "\n\n________________________________\n")
                    body += (f"From: {DANA.addr}\nSent: {uk_sent(prev[0])}\n"
                             f"To: {who.addr}\nSubject: Re: {subject}\n\n"
                             + prev[1])
            in_id = other_msgid(rng, who)
            in_subject = subject if k == 0 else "Re: " + subject
            msg, text = self.compose(
                who=who, topic=topic, when=when, subject="Re: " + subject,
                ctx=ctx, is_reply=True, style=style,
                incoming=(in_when, who, in_id, in_subject, body),
                references=list(chain), opener=opener)
            chain.extend([in_id, msg["Message-ID"]])
            prev = (when, text)
            items.append(Item(when, msg))
            self.stats["thread_messages"] += 1
        return items

    def received(self, name: str, topic: str) -> Item:
        """A message *to* Dana that ended up in her sent folder."""
        who = CONTACT[name]
        when = self.random_date()
        ctx = self.context(who, when)
        subject = self.rng.choice(
            DANA_TOPICS[topic]["subjects"]).format_map(ctx)
        text = self.incoming_text(who, topic, ctx)
        msg = build_message(sender=who, to=DANA, subject=subject, date=when,
                            msgid=other_msgid(self.rng, who),
                            text=text + "\n")
        self.stats["received"] += 1
        return Item(when, msg)

    def auto_reply(self, holiday, name: str, topic: str) -> Item:
        rng = self.rng
        who = CONTACT[name]
        lo, hi, back = holiday
        day = lo + timedelta(days=rng.randrange(1, (hi - lo).days - 1))
        when = london(day.replace(hour=rng.randrange(8, 20),
                                  minute=rng.randrange(60),
                                  second=rng.randrange(60)))
        ctx = self.context(who, when)
        base = rng.choice(DANA_TOPICS[topic]["subjects"]).format_map(ctx)
        text = (f"Out of office\n\nThanks for your email. I'm away from the "
                f"studio until {back}, with very limited access to email.\n\n"
                "For anything urgent on a live project, please call "
                "+44 7700 900123 and leave a message.\n\n"
                "Dana Whitfield\nWillow Creek Garden Design\n")
        in_id = other_msgid(rng, who)
        msg = build_message(
            sender=DANA, to=who, subject=f"Out of office: Re: {base}",
            date=when, msgid=self.msgid(when), text=text,
            in_reply_to=in_id, references=[in_id],
            extra_headers=[("Auto-Submitted", "auto-replied"),
                           ("X-Autoreply", "yes")])
        self.stats["auto_replies"] += 1
        return Item(when, msg)


def generate_dana(count: int) -> tuple:
    w = DanaWriter(DANA_SEED)
    rng = w.rng
    items = []
    for name, subject, stages, style, start in DANA_THREADS:
        if w.stats["thread_messages"] + len(stages) > count // 3:
            break
        items.extend(w.thread(name, subject, stages, style, start))
    rest = count - len(items)
    n_reply = max(0, round(0.6 * count) - len(items))
    n_pii = min(len(DANA_PII), rest)
    n_html = min(10, max(0, (rest - n_pii) // 12))
    kinds = ["reply"] * min(n_reply, rest) + ["new"] * max(0, rest - n_reply)
    rng.shuffle(kinds)
    for i, kind in enumerate(kinds):
        pii = DANA_PII[i] if i < n_pii else None
        html_part = n_pii <= i < n_pii + n_html
        items.append(w.standalone(kind == "reply", html_part=html_part,
                                  pii=pii))
    for name, topic in [("Ben Marsh", "plant_order"), ("Jo Pemberton", "friend"),
                        ("Megan Price", "decline"), ("Tom Hargreaves", "thanks"),
                        ("Nina Shah", "accounts")]:
        items.append(w.received(name, topic))
    items.append(w.auto_reply(HOLIDAYS[0], "Helen Carter", "site_visit"))
    items.append(w.auto_reply(HOLIDAYS[1], "Kate Doyle", "stone_quote"))
    items.sort(key=lambda it: (it.when.astimezone(timezone.utc),
                               it.msg["Message-ID"]))
    stats = dict(w.stats)
    stats["dana_authored"] = stats["replies"] + stats["new"]
    stats["messages"] = len(items)
    return [it.msg for it in items], stats


# --------------------------------------------------------------------------
# Marcus
# --------------------------------------------------------------------------

class MarcusWriter:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.accepted = []
        self.ids = set()
        self.stats = {"replies": 0, "quoted_replies": 0, "new": 0, "html": 0,
                      "threads": 0, "thread_messages": 0}

    def random_date(self, lo: datetime = START, hi: datetime = END):
        rng = self.rng
        while True:
            day = lo + timedelta(days=rng.randrange((hi - lo).days + 1))
            if day.weekday() >= 5:
                continue
            naive = day.replace(hour=rng.choices(
                range(7, 19), [5, 8, 9, 8, 6, 4, 6, 7, 6, 5, 3, 2])[0],
                minute=rng.randrange(60), second=rng.randrange(60))
            if naive <= hi:
                return chicago(naive)

    def msgid(self, dt: datetime) -> str:
        while True:
            mid = make_msgid(self.rng, dt, MARCUS.domain)
            if mid not in self.ids:
                self.ids.add(mid)
                return mid

    def context(self, who: Person, when: datetime, topic: str) -> dict:
        rng = self.rng
        deadline_day = when + timedelta(days=rng.randint(5, 20))
        while deadline_day.weekday() >= 5:
            deadline_day += timedelta(days=1)
        site = rng.choice(SITES)
        colleagues = [p.name for p in MARCUS_CONTACTS
                      if p.group == "internal" and p.name != who.name]
        return {
            "first": who.first,
            "org": who.org or "Northgate Logistics",
            "ref": f"PO-{rng.randrange(40000, 49999)}",
            "inv": f"INV-{when.year}-{rng.randrange(10000, 99999)}",
            "site": site,
            "site_title": site.replace("the ", "").title(),
            "week": str(when.isocalendar()[1]),
            "weekday": DAY_NAMES[rng.randrange(5)],
            "date_long": f"{MONTH_NAMES[when.month - 1]} {when.day}",
            "deadline": (f"{DAY_NAMES[deadline_day.weekday()]}, "
                         f"{MONTH_NAMES[deadline_day.month - 1]} "
                         f"{deadline_day.day}"),
            "month": MONTH_NAMES[when.month - 1],
            "quarter": f"Q{(when.month - 1) // 3 + 1}",
            "year": str(when.year + (when.month >= 10)),
            "carrier": rng.choice(CARRIERS),
            "doc": rng.choice(MARCUS_DOCS[topic]),
            "qty": str(rng.choice([12, 18, 24, 36, 48, 60, 120, 240])),
            "pct_small": f"{rng.uniform(2.5, 9.5):.1f} percent",
            "pct_accuracy": f"{rng.uniform(96.0, 99.3):.1f} percent",
            "pct_ontime": f"{rng.uniform(86.0, 95.8):.1f} percent",
            "amount": f"${rng.randrange(800, 48000):,}.{rng.randrange(100):02d}",
            "hours": str(rng.choice([40, 60, 80, 120, 160])),
            "headcount": str(rng.choice([4, 6, 8, 10, 12, 15])),
            "colleague": rng.choice(colleagues),
        }

    def own_text(self, who: Person, topic: str, ctx: dict, is_reply: bool):
        rng = self.rng
        T = MARCUS_TOPICS[topic]
        fill = lambda s: s.format_map(ctx)  # noqa: E731
        if who.group == "client" and rng.random() < 0.4:
            greeting = f"Dear {'Ms.' if who.first != 'Steven' else 'Mr.'} " \
                       f"{who.name.split()[-1]},"
        else:
            greeting = f"Dear {who.first},"
        blocks = [greeting]
        if is_reply and rng.random() < 0.15:
            blocks.append(fill(rng.choice(MARCUS_SHORT)))
        else:
            first = rng.choice(MARCUS_REPLY_OPENERS) if is_reply else ""
            opener = rng.choice(MARCUS_OPENERS)
            blocks.append(opener if not first else f"{opener} {first}")
            intro = [fill(s) for s in rng.sample(T["intro"],
                                                 rng.randint(1, 2))]
            if rng.random() < 0.5:
                intro.append(fill(rng.choice(MARCUS_EXTRA)))
            blocks.append(" ".join(intro))
            items = rng.sample(T["items"], rng.randint(3, 5))
            blocks.append(fill(T["list_intro"]))
            blocks.append("\n".join(f"{i}. {fill(s)}"
                                    for i, s in enumerate(items, 1)))
            if rng.random() < 0.5:
                blocks.append(fill(rng.choice(MARCUS_EXTRA)))
        blocks.append(rng.choice(MARCUS_CLOSINGS))
        word = "Kind regards," if rng.random() < 0.92 else "Best regards,"
        sig = f"{word}\nMarcus Bell\nOperations Manager"
        if rng.random() < 0.6:
            sig += "\nNorthgate Logistics, Inc.\n(312) 555-0148"
        blocks.append(sig)
        return blocks

    def choose_own(self, *args, threshold: float = 0.7, tries: int = 60):
        best = None
        for _ in range(tries):
            blocks = self.own_text(*args)
            ws = words("\n\n".join(blocks))
            worst = max((jaccard(ws, o) for o in self.accepted), default=0.0)
            if best is None or worst < best[0]:
                best = (worst, blocks, ws)
            if worst < threshold:
                break
        self.accepted.append(best[2])
        return best[1]

    def incoming_text(self, who: Person, topic: str, ctx: dict) -> str:
        body = MARCUS_TOPICS[topic]["incoming"].format_map(ctx)
        hello = self.rng.choice(["Hi Marcus,", "Marcus,", "Hello Marcus,"])
        bye = self.rng.choice(["Thanks,", "Regards,", "Best,"])
        org = f"\n{who.org}" if who.org else ""
        return f"{hello}\n\n{body}\n\n{bye}\n{who.sign}{org}"

    def compose(self, *, who, topic, when, subject, ctx, is_reply,
                style="none", incoming=None, references=(), html_part=False):
        rng = self.rng
        blocks = self.choose_own(who, topic, ctx, is_reply)
        text = "\n\n".join(blocks)
        attr = quoted = None
        in_reply_to = None
        if incoming is not None:
            in_when, in_who, in_id, in_subject, in_text = incoming
            in_reply_to = in_id
            if style == "gmail":
                attr = us_gmail_attr(in_when, in_who)
                text += "\n\n" + attr + "\n" + quote_lines(in_text)
                quoted = in_text
            elif style == "outlook":
                text += (f"\n\nFrom: {in_who.addr}\nSent: {us_sent(in_when)}\n"
                         f"To: {MARCUS.addr}\nSubject: {in_subject}\n\n"
                         + in_text)
            elif style == "original":
                text += ("\n\n-----Original Message-----\n"
                         f"From: {in_who.addr}\nSent: {us_sent(in_when)}\n"
                         f"To: {MARCUS.email}\nSubject: {in_subject}\n\n"
                         + in_text)
            if style != "none":
                self.stats["quoted_replies"] += 1
        html_text = boundary = None
        if html_part:
            html_text = to_html(blocks, None, attr, quoted)
            boundary = f"_000_{rng.getrandbits(64):016x}_"
            self.stats["html"] += 1
        refs = list(references)
        if in_reply_to and in_reply_to not in refs:
            refs.append(in_reply_to)
        msg = build_message(sender=MARCUS, to=who, subject=subject, date=when,
                            msgid=self.msgid(when), text=text + "\n",
                            in_reply_to=in_reply_to,
                            references=refs or None, html_text=html_text,
                            boundary=boundary)
        self.stats["replies" if is_reply else "new"] += 1
        return msg, text

    def standalone(self, is_reply: bool, html_part: bool = False) -> Item:
        rng = self.rng
        who = rng.choices(MARCUS_CONTACTS,
                          [p.weight for p in MARCUS_CONTACTS])[0]
        topic = rng.choice(MARCUS_CONTACT_TOPICS[who.name])
        when = self.random_date()
        ctx = self.context(who, when, topic)
        base = rng.choice(MARCUS_TOPICS[topic]["subjects"]).format_map(ctx)
        incoming = None
        style = "none"
        subject = base
        if is_reply:
            style = "gmail" if html_part else rng.choices(
                ["outlook", "original", "gmail", "none"], [45, 25, 20, 10])[0]
            subject = "RE: " + base if style != "gmail" else "Re: " + base
            in_when = earlier_time(rng, when, 7, 19, max_days=3)
            while in_when.weekday() >= 5:
                in_when -= timedelta(days=1)
            incoming = (in_when, who, other_msgid(rng, who), base,
                        self.incoming_text(who, topic, ctx))
        msg, _ = self.compose(who=who, topic=topic, when=when, subject=subject,
                              ctx=ctx, is_reply=is_reply, style=style,
                              incoming=incoming, html_part=html_part)
        return Item(when, msg)

    def thread(self, name, subject, topics, style):
        rng = self.rng
        who = next(p for p in MARCUS_CONTACTS if p.name == name)
        self.stats["threads"] += 1
        when = self.random_date(START, END - timedelta(days=60))
        chain, prev, items = [], None, []
        for k, topic in enumerate(topics):
            if k:
                naive = when.replace(tzinfo=None) + timedelta(
                    days=rng.randint(1, 6), hours=rng.randint(-3, 3))
                while naive.weekday() >= 5:
                    naive += timedelta(days=1)
                when = chicago(naive)
            ctx = self.context(who, when, topic)
            body = self.incoming_text(who, topic, ctx)
            if prev is None:
                in_when = earlier_time(rng, when, 7, 19)
            else:
                in_when = between(rng, prev[0], when, 7, 19)
                sep = ("\n\n-----Original Message-----\n"
                       if style == "original" else "\n\n")
                body += (sep + f"From: {MARCUS.addr}\n"
                         f"Sent: {us_sent(prev[0])}\nTo: {who.addr}\n"
                         f"Subject: RE: {subject}\n\n" + prev[1])
            in_id = other_msgid(rng, who)
            in_subject = subject if k == 0 else "RE: " + subject
            msg, text = self.compose(
                who=who, topic=topic, when=when, subject="RE: " + subject,
                ctx=ctx, is_reply=True, style=style,
                incoming=(in_when, who, in_id, in_subject, body),
                references=list(chain))
            chain.extend([in_id, msg["Message-ID"]])
            prev = (when, text)
            items.append(Item(when, msg))
            self.stats["thread_messages"] += 1
        return items


def generate_marcus(count: int) -> tuple:
    w = MarcusWriter(MARCUS_SEED)
    items = []
    for name, subject, topics, style in MARCUS_THREADS:
        if len(items) + len(topics) > count // 3:
            break
        items.extend(w.thread(name, subject, topics, style))
    rest = count - len(items)
    n_reply = max(0, round(0.4 * count) - len(items))
    n_html = min(4, rest // 20)
    kinds = ["reply"] * min(n_reply, rest) + ["new"] * max(0, rest - n_reply)
    w.rng.shuffle(kinds)
    for i, kind in enumerate(kinds):
        items.append(w.standalone(kind == "reply", html_part=i < n_html))
    items.sort(key=lambda it: (it.when.astimezone(timezone.utc),
                               it.msg["Message-ID"]))
    stats = dict(w.stats)
    stats["marcus_authored"] = stats["replies"] + stats["new"]
    stats["messages"] = len(items)
    return [it.msg for it in items], stats


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

def generate(out_dir: Path, dana_count: int = 150,
             marcus_count: int = 90) -> dict:
    """Write both mailboxes into ``out_dir``; return per-file counts.

    ``dana_count`` is the number of hand-written Dana messages; the Dana
    mailbox additionally holds 5 received messages and 2 auto-replies.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dana_msgs, dana_stats = generate_dana(dana_count)
    marcus_msgs, marcus_stats = generate_marcus(marcus_count)
    write_mbox(out_dir / DANA_FILE, dana_msgs)
    write_mbox(out_dir / MARCUS_FILE, marcus_msgs)
    return {DANA_FILE: dana_stats, MARCUS_FILE: marcus_stats}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output directory (default: %(default)s)")
    parser.add_argument("--dana-count", type=int, default=150)
    parser.add_argument("--marcus-count", type=int, default=90)
    args = parser.parse_args(argv)
    counts = generate(args.out, args.dana_count, args.marcus_count)
    json.dump(counts, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
