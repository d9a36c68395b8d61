"""PII and secrets scrubbing: typed placeholders instead of addresses, numbers and keys.

Placeholders: ``<EMAIL>``, ``<PHONE>``, ``<CARD>``, ``<SSN>``, ``<IBAN>``, ``<BANK>`` (routing or
account number, sort code), ``<DOB>`` (date of birth), ``<IP>``, ``<SECRET>`` and, unless
``keep_urls``, ``<URL>``.

Detectors (no NER, no spaCy model, no network):

- Presidio's *pattern* recognizers (email, credit card with Luhn, IBAN with mod-97 and the
  country formats, US SSN, IPv4/IPv6, phone via ``phonenumbers``) in an ``AnalyzerEngine``
  whose NLP engine is Presidio's ``NoOpNlpEngine``, so spaCy never loads or downloads a model.
  Presidio's email check calls ``tldextract``; we give it an extractor built with
  ``suffix_list_urls=()`` and ``cache_dir=None`` so it uses the public-suffix snapshot bundled
  in the wheel and never goes online (``tests/test_dataset_pii_offline.py`` proves it).
- Keyword recognisers (Presidio ``PatternRecognizer``s whose pattern holds the keyword): an SSN
  with or without separators after "SSN"/"social security number", routing and account numbers
  and sort codes after their keyword, a date after "date of birth"/"DOB"/"born on"; and any
  SSN-shaped 3-2-4 value, even the well-known samples Presidio rejects.
- Our own Luhn-checked card regex (Presidio's misses the Mastercard 2-series), an
  http(s)/www URL regex that keeps the path.
- ``detect-secrets`` regex plugins (AWS, GitHub, GitLab, Slack, Stripe, OpenAI, SendGrid,
  Twilio, JWT, private-key headers, basic-auth URLs, ...), a high-entropy check for unquoted
  tokens (letters of both cases and digits, length ≥ 20, Shannon entropy ≥ 3.7 bits/char),
  PEM blocks up to their END line, and prose passwords ("my password is …", "pw: …").

Every detector runs on three views of the message, mapped back to original offsets: HTML
entities decoded (``&#64;``, ``&nbsp;``); plus line breaks (with any ``>`` quote prefix or
``<br>``) joined by a space; and joined by nothing. A value split across a line break (a
wrapped card number, a hard-wrapped token, a quoted two-line IBAN) is thereby found whole; the
joined views only contribute detections that actually cross a break, and only breaks where a
wrap is plausible are joined (``_joinable``: never across a blank line; glued only where the next
line continues the token), so a URL never swallows the sign-off after it. The line structure is
kept: a crossing value becomes ``<CARD>`` followed by the original break and quote prefix.

``protect``: strings that must never be replaced (the user's name, first name, sign-off).
A detection overlapping a standalone occurrence of one is dropped. "Standalone" means not part
of an address or token (``dana@x.com`` is still an email), so the user's own address still goes.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

# heavy: presidio, detect-secrets, tldextract and phonenumbers are imported when the scrubber is built.

_WEAK = "SECRET_WEAK"  # high-entropy guess: reported as SECRET, loses to any typed detection
LABELS = ("EMAIL", "PHONE", "CARD", "SSN", "IBAN", "BANK", "DOB", "IP", "SECRET", "URL")
# When two detections overlap, the longer wins; on equal length, the earlier in this order.
_PRIORITY = {
    lbl: i for i, lbl in enumerate(("SECRET", "CARD", "IBAN", "SSN", "BANK", "DOB", "EMAIL", "URL", "IP", "PHONE", _WEAK))
}

URL_RE = re.compile(r"(?<![\w@])(?:https?://|www\.)[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]}]", re.I)
CARD_RE = re.compile(r"(?<![\d-])[2-6]\d{3}(?:[ -]?\d){8,15}(?![\d])")
PEM_RE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|(?:[^\n]*\n?)(?:[ \t>]*[A-Za-z0-9+/=:-]{16,}[ \t]*\n?)*)",
    re.S,
)
_TOKEN_TAIL = re.compile(r"(?:[\w+/=-]|\.(?=[\w-]))*")
TOKEN_RE = re.compile(r"(?<![\w/+=-])[A-Za-z0-9+/_=-]{20,}(?![\w/+=-])")
_KEY_WORDS = r"(?:api[ _-]?key|access[ _-]?key|secret(?:[ _-]?key)?|token|auth[ _-]?token|bearer|client[ _-]?secret)"
KEYED_RE = re.compile(_KEY_WORDS + r"\s*(?:is|was|=|:)?\s*[:=]?\s*[\"'“]?([A-Za-z0-9+/_=.-]{12,})", re.I)
PASSWORD_RE = re.compile(
    r"\b(?P<kw>pass(?:word|wd|code|phrase)|pwd|pw|pin)\b"
    r"(?:\s+for\s+[\w.@-]+(?:\s+[\w.@-]+)?)?"  # "password for the wifi"
    r"(?P<sep>\s*(?:[:=]|->)\s*|\s+(?:is|was|will\s+be|is\s+now|is\s+still|=)\s*[:=]?\s*)"
    r"[\"'“‘`]?(?P<val>[^\s\"'”’`<>]+)",
    re.I,
)
_PW_STOP = frozenset(
    """a an the my your his her our their its this that same one old new not no still now also just
    reset changed expired wrong incorrect correct right below above attached here there in on at
    for to of and or but if as so too very fine ok okay set being been required needed case
    sensitive different empty blank missing what which where who how why when please yes
    """.split()
)
# A line break inside a value: the break, any quote prefix ("> > ") or <br>, and spaces.
JOINER_RE = re.compile(r"[ \t]*(?:<br\s*/?>[ \t]*\r?\n?|\r?\n)[ \t]*(?:>[ \t]*)*", re.I)
ENTITY_RE = re.compile(r"&(?:#\d{1,7}|#x[0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def luhn_ok(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if alt:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        alt = not alt
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    s = re.sub(r"[\s-]", "", iban).upper()
    if not 15 <= len(s) <= 34 or not s.isalnum():
        return False
    s = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in s)
    return int(num) % 97 == 1


def shannon_entropy(s: str) -> float:
    counts = Counter(s)
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


@dataclass
class Scrubbed:
    text: str
    counts: Counter = field(default_factory=Counter)


# --------------------------------------------------------------------------- engines


@lru_cache(maxsize=None)
def _offline_tld():
    import tldextract

    # No URLs to fetch, no disk cache: the Public Suffix List snapshot inside the wheel only.
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


@lru_cache(maxsize=8)
def _engine(regions: tuple[str, ...]):
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str):
            return _offline_tld()(pattern_text).fqdn != ""

    recognizers = [
        *_keyword_recognizers(),
        OfflineEmailRecognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        UsSsnRecognizer(),
        IpRecognizer(),
        PhoneRecognizer(supported_regions=regions, leniency=1),
    ]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    nlp.load()
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])


# Context-aware recognisers: a value written after its keyword ("ssn: 536228421", "routing
# number 021000021", "DOB: 04/12/1985"). Presidio's own context words only raise the score of a
# pattern match through the NLP engine's lemmas, which the NoOp engine has none of, so the keyword
# is part of each pattern instead, before a ``\K`` (Presidio matches with the ``regex`` module,
# whose ``\K`` starts the reported match there): the match is the value alone. A lookbehind would
# do the same but is tried at every position: on 300 SpamAssassin messages scrubbing took 7.0 ms a
# message with lookbehinds, 5.4 with ``\K``, 4.7 without these recognisers.
_SEP = r"(?:\s*(?:(?:is|was|no|number|num)\b\.?|[:=#-])){0,4}\s*"
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE = (r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"
         r"|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r",?\s+\d{4}"
         r"|" + _MONTH + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4})")
_KEYWORD_PATTERNS = {
    # any 9 digits, separators or not, after "SSN", "social security number", "SS#", "soc. sec."
    "US_SSN": (r"\b(?:ssn|ss\#|social[ -]security(?:[ -](?:number|no|num|\#))?|soc\.?[ ]?sec\.?)" + _SEP + r"\K"
               r"\d{3}[- .]?\d{2}[- .]?\d{4}(?![\d-])", ["ssn", "social security"]),
    # routing (ABA) numbers, account numbers, UK sort codes
    "BANK_NUMBER": (
        r"\b(?:(?:routing|aba|rtn|transit)(?:[ /-](?:transit|routing))?|(?:bank|checking|chequing|savings|current)"
        r"\s+(?:account|acct)|account(?=\s*(?:number|no\b|num|\#|:))|acct|a/c|sort[ -]?code)" + _SEP + r"\K"
        r"\d(?:[ -]?\d){5,16}(?![\d-])",
        ["routing", "account", "acct", "aba", "sort code"],
    ),
    "DATE_OF_BIRTH": (r"\b(?:date\s+of\s+birth|d\.?o\.?b\.?|birth\s*date|birthdate|born(?:\s+on)?)" + _SEP + r"\K"
                      + _DATE + r"(?!\d)", ["birth", "dob", "born"]),
}
# An SSN-shaped value (3-2-4 digits, one separator) is scrubbed even where Presidio calls it
# invalid: the well-known samples 078-05-1120 and 123-45-6789, area 000/666/9xx, are still a
# number someone wrote in the SSN's place.
_SSN_SHAPE = r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])"


def _keyword_recognizers():
    from presidio_analyzer import Pattern, PatternRecognizer

    out = [
        PatternRecognizer(supported_entity=ent, name=f"Keyword{ent.title().replace('_', '')}Recognizer",
                          patterns=[Pattern(f"{ent.lower()} after keyword", rx, 0.85)], context=ctx)
        for ent, (rx, ctx) in _KEYWORD_PATTERNS.items()
    ]
    out.append(PatternRecognizer(supported_entity="US_SSN", name="SsnShapeRecognizer",
                                 patterns=[Pattern("ssn shape", _SSN_SHAPE, 0.6)]))
    return out


_PRESIDIO_LABEL = {
    "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "SSN",
    "IP_ADDRESS": "IP",
    "PHONE_NUMBER": "PHONE",
    "BANK_NUMBER": "BANK",
    "DATE_OF_BIRTH": "DOB",
}
# Presidio scores: validated patterns (Luhn, mod-97, suffix list) score 1.0, phone 0.4;
# its "very weak" SSN patterns (any 9 digits: order numbers) score 0.05 and the bare "::"
# IPv6 pattern 0.1, both below these floors.
_MIN_SCORE = {"SSN": 0.5, "IP": 0.5}


@lru_cache(maxsize=None)
def _secret_plugins():
    from detect_secrets.plugins.artifactory import ArtifactoryDetector
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    plugins = [
        ArtifactoryDetector(), AWSKeyDetector(), AzureStorageKeyDetector(), BasicAuthDetector(),
        DiscordBotTokenDetector(), GitHubTokenDetector(), GitLabTokenDetector(), JwtTokenDetector(),
        MailchimpDetector(), NpmDetector(), OpenAIDetector(), PrivateKeyDetector(), PypiTokenDetector(),
        SendGridDetector(), SlackDetector(), SquareOAuthDetector(), StripeDetector(),
        TelegramBotTokenDetector(), TwilioKeyDetector(),
    ]  # fmt: skip
    out = []
    for p in plugins:
        check = getattr(p, "is_formally_valid", None)  # JWT: header/payload must decode
        for rx in p.denylist:
            out.append((rx, check))
    return tuple(out)


# --------------------------------------------------------------------------- views


class _View:
    """A transformed copy of the text with, per character, its original [start, end)."""

    __slots__ = ("text", "starts", "ends")

    def __init__(self, text: str, edits: list[tuple[int, int, str]]):
        if not edits:
            self.text, self.starts, self.ends = text, None, None
            return
        parts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        pos = 0
        for a, b, rep in edits:
            if a < pos:
                continue
            parts.append(text[pos:a])
            starts.extend(range(pos, a))
            ends.extend(range(pos + 1, a + 1))
            parts.append(rep)
            starts.extend([a] * len(rep))
            ends.extend([b] * len(rep))
            pos = b
        parts.append(text[pos:])
        starts.extend(range(pos, len(text)))
        ends.extend(range(pos + 1, len(text) + 1))
        self.text, self.starts, self.ends = "".join(parts), starts, ends

    def orig(self, s: int, e: int) -> tuple[int, int]:
        if self.starts is None:
            return s, e
        return self.starts[s], self.ends[e - 1]


def _entity_edits(text: str) -> list[tuple[int, int, str]]:
    if "&" not in text:
        return []
    edits = []
    for m in ENTITY_RE.finditer(text):
        rep = html.unescape(m.group(0))
        if rep == m.group(0):
            continue
        edits.append((m.start(), m.end(), rep.replace("\xa0", " ")))
    return edits


_ALL = frozenset({"presidio", "phone", "card", "url", "tokens", "prose"})
# Joined by a space: values split at a separator (card/phone/SSN/IBAN groups, "password is\nX").
_SPACE_JOIN = frozenset({"presidio", "phone", "card", "prose"})
# Joined by nothing: a token hard-wrapped mid-way (an address, a URL, an API key, a compact IBAN).
_GLUE_JOIN = frozenset({"presidio", "card", "url", "tokens"})
_TOK_BEFORE = re.compile(r"(\S*)$")
_TOK_AFTER = re.compile(r"^(\S*)")


# An ordinary word, maybe followed by punctuation: "Thanks,", "Best", "Date:", "and", "ActiveBuddy", "SPAM:".
_PROSE_WORD = re.compile(r"(?:[A-Z]{0,2}[a-z]+(?:[A-Z]{1,2}[a-z]+)*(?:['’-][A-Z]{0,2}[a-z]+(?:[A-Z]{1,2}[a-z]+)*)*|[A-Z](?:['’][a-z]+)?|[A-Z][A-Z0-9]+)[^\w\s]*")
# Words that introduce an address at the end of a line ("write to\njo@x.org", "contact\n...").
_LEADS_IN = frozenset("at to contact email e-mail mail write me us or and on via from by is the address reach cc send please visit see".split())
# A word as written in prose, camel case and a version number included ("nVidia", "GeForce4").
_WORDISH = re.compile(r"[A-Z]{0,2}[a-z]+(?:[A-Z]{1,2}[a-z]+)*\d{0,4}[^\w\s]*")
# a path after a host: "x.org/a" has one, "www.x.org" and "jo@x.org" do not
_HOST_RE = re.compile(r"(?<=[\w.-])/")
_URL_START = re.compile(r"https?://|www\.", re.I)
_LIST_NUMBER = re.compile(r"\d{1,3}[.)]?")  # a numbered list item
_IDENT = re.compile(r"[A-Za-z]{3,}[_-]|[_-][A-Za-z]{3,}|[A-Za-z]{2,}=\w")  # not base64's "==" padding
_EMAIL_TAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")


def _complete_value(token: str, *, at_start: bool = False) -> bool:
    """The token already holds a whole URL or address, only punctuation after it: "(see
    https://x.org/a)." or "riley@example.com." — what follows the line break is not part of it.
    ``at_start``: the value starts the token ("jo@x.org," after a break)."""
    for m in _URL_START.finditer(token):
        url = URL_RE.match(token[m.start() :])  # the chain may glue a word before it: "seehttp://"
        if url and not (at_start and m.start()) and not any(c.isalnum() for c in token[m.start() + url.end() :]):
            return True
    for m in _EMAIL_TAIL.finditer(token):
        if at_start and any(c.isalnum() for c in token[: m.start()]):
            continue
        if not any(c.isalnum() for c in token[m.end() :]) and _offline_tld()(m.group(1)).suffix:
            return True
    return False


def _left_chain(text: str, start: int, token: str) -> str:
    """The token before a break, with the lines it continues: a URL wrapped over three lines is
    whole at the end of the third ("...u=/ap/200\n20903/ap/ukraine_3" + "\nUkraine-Iraq")."""
    for _ in range(8):
        line_start = text.rfind("\n", 0, start) + 1
        if line_start == 0 or text[line_start:start].strip(" \t>"):
            break
        prev_end = line_start - 1
        if prev_end > 0 and text[prev_end - 1] == "\r":
            prev_end -= 1
        prev = _TOK_BEFORE.search(text, max(0, prev_end - 200), prev_end).group(1)
        if not prev:
            break
        token, start = prev + token, prev_end - len(prev)
    return token


def _joinable(text: str, a: int, b: int, glue: bool) -> bool:
    """Whether the line break ``text[a:b]`` may be a wrap inside a value.

    Never across a blank (or quote-only) line: a value does not span paragraphs. Glued (joined by
    nothing, for a token hard-wrapped mid-way) only where the continuation starts like the rest of
    a token: no space before the break, no closing punctuation ending the line, no rule or
    bracket starting the next; when the next line starts with an ordinary word ("Thanks,", "Best",
    "Date:") only if the token before the break is not already a whole URL or address, and when it
    starts with a whole address only if the line does not end with a number, a capitalised or a
    lead-in word ("Doctor of Folklore\nlejones@ucla.edu", "write to\nhelp@nytimes.com").

    Line width is deliberately not a criterion: a value wrapped by a client that folds at 40
    columns, or quoted and re-folded, breaks on short lines (and the canary suite plants them so)."""
    if b >= len(text) or text[b] in "\r\n":
        return False
    line_start = text.rfind("\n", 0, a) + 1
    if not text[line_start:a].strip(" \t>"):
        return False
    if not glue:
        return True
    if text[a] in " \t":
        return False
    left = _TOK_BEFORE.search(text, max(0, a - 200), a).group(1)
    right = _TOK_AFTER.match(text[b : b + 200]).group(1)
    chain = _left_chain(text, a - len(left), left)
    if not left or not right or left[-1] in ",;!)]}>\"'”’" or right[0] in "([{<*\"'“‘":
        return False
    if not any(c.isalnum() for c in right[:2]):  # a rule ("-----"), "--", "|", "..."
        return False
    if (_PROSE_WORD.fullmatch(right) or _LIST_NUMBER.fullmatch(right) or _complete_value(right, at_start=True)) \
            and _complete_value(chain):
        return False  # "https://x.org/deck\nThanks,", "bob@x.com\nwww.x.com", "x.org/a/\n  2 ..."
    if chain[-1].isalnum() and right[0] not in "./-?#&=%_" and not _HOST_RE.search(chain) and _complete_value(chain):
        return False  # a bare host or address ends at its TLD: "www.dbsinfo.com\n106 Longhorn Road"
    # "Doctor of Folklore\nlejones@ucla.edu", "write to\nhelp@nytimes.com"
    return not (
        (
            not any(c.isalpha() for c in left)  # "617-864-0455\nkieran@datapower.com"
            or (_PROSE_WORD.fullmatch(left) and (left[0].isupper() or left.lower() in _LEADS_IN))
        )
        and _complete_value(right, at_start=True)
    )


def _views(text: str) -> list[tuple[_View, frozenset, bool]]:
    """(view, detector kinds, crossing_only) triples."""
    ent = _entity_edits(text)
    views = [(_View(text, ent), _ALL, False)]
    breaks = [(m.start(), m.end()) for m in JOINER_RE.finditer(text)]
    if not breaks:
        return views
    space = [(a, b) for a, b in breaks if _joinable(text, a, b, glue=False)]
    digit_join = False
    for a, b in space:
        left = _TOK_BEFORE.search(text, max(0, a - 40), a).group(1)
        right = _TOK_AFTER.match(text[b : b + 40]).group(1)
        if any(c.isdigit() for c in left + right):
            digit_join = True
            break
    kinds_b = _SPACE_JOIN if digit_join else frozenset({"prose"})
    glued = [(a, b) for a, b in space if _joinable(text, a, b, glue=True)]
    for glue, kinds, joins in ((" ", kinds_b, space), ("", _GLUE_JOIN, glued)):
        if joins:
            edits = sorted(ent + [(a, b, glue) for a, b in joins])
            views.append((_View(text, edits), kinds, True))
    return views


def _wordish_pieces(text: str, s: int, e: int) -> bool:
    """A high-entropy guess crossing breaks made of words ("nVidia\nGeForce4\nTi4200") or of
    identifiers is not a token."""
    pieces = [p for p in JOINER_RE.split(text[s:e]) if p]
    if len(pieces) < 2:
        return False
    # identifiers and settings on consecutive lines ("debug1: got SSH2_MSG_SERVICE_ACCEPT\ndebug1",
    # "NUMBER=3\nPREFIX=repeat"): a word joined by _ = - is not a piece of a random token
    return all(_WORDISH.fullmatch(p) for p in pieces) or any(_IDENT.search(p) for p in pieces)


# --------------------------------------------------------------------------- detectors


def _detect_secrets(t: str, found: list, kinds: frozenset) -> None:
    if "prose" in kinds:
        _detect_prose_secrets(t, found)
    if "tokens" not in kinds:
        return
    for m in PEM_RE.finditer(t):
        found.append((m.start(), m.end(), "SECRET"))
    for rx, check in _secret_plugins():
        for m in rx.finditer(t):
            if m.end() > m.start() and (check is None or check(m.group(0))):
                # plugin regexes can stop early (the JWT one is lazy and drops the signature)
                end = _TOKEN_TAIL.match(t, m.end()).end()
                found.append((m.start(), end, "SECRET"))
    for m in TOKEN_RE.finditer(t):
        tok = m.group(0)
        core = tok.strip("=-_")
        if (
            len(core) >= 20
            and any(c.isdigit() for c in core)
            and any(c.islower() for c in core)
            and any(c.isupper() for c in core)
            and shannon_entropy(core) >= 3.7
            and not ("/" in core and max(len(seg) for seg in core.split("/")) < 16)  # a URL or file path
        ):
            found.append((m.start(), m.end(), _WEAK))


def _detect_prose_secrets(t: str, found: list) -> None:
    for m in KEYED_RE.finditer(t):
        val = m.group(1).rstrip(".")
        if any(c.isdigit() for c in val) and any(c.isalpha() for c in val):
            found.append((m.start(1), m.start(1) + len(val), "SECRET", m.start()))
    for m in PASSWORD_RE.finditer(t):
        val = m.group("val").rstrip(".,;:!?)]}")
        if not val:
            continue
        strong_sep = bool(re.search(r"[:=>]", m.group("sep")))
        if val.lower() in _PW_STOP:
            continue
        if m.group("kw").lower() == "pin" and not any(c.isdigit() for c in val):
            continue
        if not strong_sep and not (val.isalpha() or any(not c.isalpha() for c in val)):
            continue
        found.append((m.start("val"), m.start("val") + len(val), "SECRET", m.start()))


_PHONE_CONTEXT = re.compile(r"\b(?:call|phone|tel|telephone|mobile|mob|cell|ph|fax|whatsapp|text|ring|dial)\b", re.I)


def _phone_plausible(t: str, s: int, e: int, region: str) -> bool:
    """Valid per libphonenumber is not enough: "Order no. 4503217789" is a valid US number.
    Keep a match written as a phone is written: with a ``+``/``00`` prefix, in groups of at most
    four digits or grouped as libphonenumber formats that number; bare digit runs only after a
    phone word ("call", "tel", "mobile", ...)."""
    import phonenumbers

    v = t[s:e]
    if v.startswith(("+", "00")):
        return True
    groups = [len(g) for g in re.findall(r"\d+", v)]
    if len(groups) == 1:
        return bool(_PHONE_CONTEXT.search(t, max(0, s - 30), s))
    if max(groups) <= 4:
        return True
    try:
        n = phonenumbers.parse(v, region)
    except phonenumbers.NumberParseException:
        return False
    for fmt in (phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL):
        formatted = [len(g) for g in re.findall(r"\d+", phonenumbers.format_number(n, fmt))]
        if formatted[-len(groups) :] == groups:
            return True
    return bool(_PHONE_CONTEXT.search(t, max(0, s - 30), s))


_NO_PHONE = ["EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS", "BANK_NUMBER", "DATE_OF_BIRTH"]


def _detect(t: str, kinds: frozenset, *, keep_urls: bool, region: str) -> list[tuple[int, int, str]]:
    found: list[tuple[int, int, str]] = []
    if "presidio" in kinds:
        entities = None if "phone" in kinds else _NO_PHONE
        for r in _engine((region,)).analyze(text=t, language="en", entities=entities, score_threshold=0.3):
            label = _PRESIDIO_LABEL.get(r.entity_type)
            if label == "PHONE" and not _phone_plausible(t, r.start, r.end, region):
                continue
            if label and r.score >= _MIN_SCORE.get(label, 0.3):
                found.append((r.start, r.end, label))
    if "card" not in kinds:
        _detect_secrets(t, found, kinds)
        return found
    for m in CARD_RE.finditer(t):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found.append((m.start(), m.end(), "CARD"))
    if not keep_urls and "url" in kinds:
        for m in URL_RE.finditer(t):
            found.append((m.start(), m.end(), "URL"))
    _detect_secrets(t, found, kinds)
    return found


def _protected_spans(text: str, protect: Sequence[str]) -> list[tuple[int, int]]:
    spans = []
    for p in protect:
        p = (p or "").strip()
        if len(p) < 2:
            continue
        rx = re.compile(r"(?<![\w@.+-])" + re.escape(p) + r"(?![\w@-]|\.\w)", re.I)
        spans.extend((m.start(), m.end()) for m in rx.finditer(text))
    return spans


def _resolve(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Merge overlapping detections into clusters; the longest member names the cluster."""
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[list] = []
    for s, e, lbl in spans:
        if out and s < out[-1][1]:
            cur = out[-1]
            best = cur[3]
            if (e - s, -_PRIORITY[lbl]) > (best[1] - best[0], -_PRIORITY[best[2]]):
                cur[3] = (s, e, lbl)
            cur[1] = max(cur[1], e)
        else:
            out.append([s, e, lbl, (s, e, lbl)])
    return [(s, e, best[2]) for s, e, _, best in out]


def find(
    text: str,
    *,
    keep_urls: bool = False,
    region: str = "US",
    protect: Sequence[str] = (),
    joins: bool = True,
) -> list[tuple[int, int, str]]:
    """The values ``scrub`` replaces, as sorted, disjoint ``(start, end, label)`` spans of ``text``
    (the precision benchmark and the property tests check them against the text around them).
    ``joins=False``: within single lines only, no joined views (the benchmark's oracle)."""
    if not text:
        return []
    found: list = []
    for view, kinds, crossing_only in _views(text)[: None if joins else 1]:
        for s, e, lbl, *anchor in _detect(view.text, kinds, keep_urls=keep_urls, region=region.upper()):
            if e <= s:
                continue
            a, b = view.orig(s, e)
            # prose passwords: "password is\n> X" crosses the break even though X does not
            ctx_a = view.orig(anchor[0], anchor[0] + 1)[0] if anchor else a
            crossing = bool(JOINER_RE.search(text, ctx_a, b))
            if crossing_only and not crossing:
                continue
            found.append((a, b, lbl, crossing))
    # A high-entropy guess glued across a break must not override a value found within a line
    # ("Card: 4111…1111\nLondon" glued is a token; it is still a card, and London stays).
    plain = [f for f in found if not f[3]]
    found = [
        (a, b, lbl)
        for a, b, lbl, crossing in found
        if not (
            crossing
            and lbl == _WEAK
            and (
                any(a < pb and pa < b and plbl not in ("SECRET", _WEAK) for pa, pb, plbl, _ in plain)
                or _wordish_pieces(text, a, b)
            )
        )
    ]
    if protect and found:
        guarded = _protected_spans(text, protect)
        found = [f for f in found if not any(f[0] < pe and ps < f[1] for ps, pe in guarded)]
    return [(s, e, "SECRET" if lbl == _WEAK else lbl) for s, e, lbl in _resolve(found)]


def kept_breaks(text: str, start: int, end: int) -> list[str]:
    """The line breaks (with their quote prefix) inside a replaced value, which ``scrub`` keeps
    after its placeholder so the line structure survives: ``<CARD>\n> rest``. A key block goes whole."""
    if text.startswith("-----BEGIN", start):
        return []
    return [m.group(0) for m in JOINER_RE.finditer(text, start, end) if "\n" in m.group(0)]


def scrub(
    text: str,
    *,
    keep_urls: bool = False,
    region: str = "US",
    protect: Sequence[str] = (),
) -> Scrubbed:
    """Replace PII and secrets in ``text`` with typed placeholders; count them by type."""
    counts: Counter = Counter()
    if not text:
        return Scrubbed(text or "", counts)
    parts: list[str] = []
    pos = 0
    for s, e, lbl in find(text, keep_urls=keep_urls, region=region, protect=protect):
        parts.append(text[pos:s])
        parts.append(f"<{lbl}>")
        parts.extend(kept_breaks(text, s, e))
        counts[lbl] += 1
        pos = e
    parts.append(text[pos:])
    return Scrubbed("".join(parts), counts)


# Only a prefilter, never a detector: a line none of whose characters could start an address,
# number, URL or secret is returned as is; everything else goes through ``scrub``.
_MAYBE_PII = re.compile(r"\d|@|://|www\.|\.[A-Za-z]{2,}\b|\b(?:pass(?:word|wd|code)?|pwd|pin|secret|token|api[_ -]?key)\b"
                        r"|[A-Za-z0-9+/=_-]{20,}", re.I)


def scrub_subject(subject: str, **kw) -> Scrubbed:
    """A subject line, scrubbed like a body. Most subjects hold nothing a detector could find;
    they skip the detectors (about half a millisecond each), which the gateway pays per draft."""
    if not subject or not _MAYBE_PII.search(subject):
        return Scrubbed(subject or "", Counter())
    return scrub(subject, **kw)


def protected_names(display_names: Iterable[str], limit: int = 10) -> list[str]:
    """The user's own display names and first names, most used first: their voice (greetings,
    sign-offs), never scrubbed. Training (``dataset.build``) and serving (the gateway) both use it."""
    names: Counter = Counter()
    for raw in display_names:
        name = (raw or "").strip().strip('"')
        if not name or "@" in name:
            continue
        names[name] += 1
        first = name.split()[0].strip(",")
        if len(first) >= 2:
            names[first] += 1
    return [n for n, _ in names.most_common(limit)]
