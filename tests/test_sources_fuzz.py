"""Property-based fuzzing of the mail parser and the cleaner (hypothesis).

Properties: arbitrary bytes and structured-but-hostile MIME never raise anything but
``BadMessage`` from the parser (and nothing at all from ``process_raw``, which counts instead),
never hang, and never hand back a control character or escape sequence; the cleaner likewise for
any text or HTML. Bounded so the suite stays fast: a fixed number of examples, no example
database written into the repo, and a generous per-example alarm that turns a hang into a
failure (it is not a speed threshold: a correct example takes milliseconds).
"""


from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailvoice.clean import extract_author_text, html_to_text
from mailvoice.controls import has_controls, strip_controls
from mailvoice.sources import SourceStats
from mailvoice.sources.filters import process_raw
from mailvoice.sources.parse import BadMessage, header_problem, parse_message
from test_sources_hostile import deadline  # one alarm-based hang guard for both

ME = "dana@example.com"
BOUNDED = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# Text that mail really carries plus everything hostile: escapes, C0/C1, surrogate-ish bytes.
HOSTILE_BITS = ["\x1b[31m", "\x1b]52;c;Zm9v\x07", "\x1b]8;;http://x\x1b\\", "\x9b2J", "\x00", "\r", "\r\n", "\x85",
                "=?utf-8?q?=1B[2J?=", "=?bogus?b?////?=", "> quoted", "-- \n", "On Mon, Sam wrote:", "\u202e", "é"]
text = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE_BITS)), max_size=12).map("".join)
header_name = st.sampled_from(["Subject", "From", "To", "Cc", "Content-Type", "Content-Transfer-Encoding",
                               "Message-ID", "References", "X-Gmail-Labels", "Date", "Content-Disposition",
                               "MIME-Version", "X-Odd"])
charsets = st.sampled_from(["utf-8", "iso-8859-1", "x-klingon", "utf-16", "gb2312", "", '"utf-8"', "unknown-8bit"])
ctes = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "bogus"])
nl = st.sampled_from(["\n", "\r\n"])


def _leaf(draw):
    ctype = draw(st.sampled_from(["text/plain", "text/html", "text/calendar", "application/octet-stream",
                                  "message/rfc822", "text/plain; format=flowed"]))
    return (f"Content-Type: {ctype}; charset={draw(charsets)}\nContent-Transfer-Encoding: {draw(ctes)}\n\n"
            f"{draw(text)}\n")


@st.composite
def mime(draw, depth=0):
    """A MIME entity (headers + body) as text; multiparts nest, boundaries may be missing or wrong."""
    if depth >= 3 or draw(st.booleans()):
        return _leaf(draw)
    boundary = draw(st.sampled_from(["b1", "b2", "", "b1 b1", '"=_x"']))
    parts = draw(st.lists(mime(depth=depth + 1), min_size=0, max_size=3))
    used = draw(st.sampled_from([boundary, "other"]))
    body = "".join(f"--{used}\n{p}" for p in parts) + (f"--{used}--\n" if draw(st.booleans()) else "")
    sub = draw(st.sampled_from(["mixed", "alternative", "related", "report"]))
    return f"Content-Type: multipart/{sub}; boundary={boundary}\n\n{draw(text)}\n{body}"


@st.composite
def message(draw):
    headers = draw(st.lists(st.tuples(header_name, text), max_size=8))
    head = f"From: {draw(st.sampled_from([ME, 'Dana <' + ME + '>', draw(text)]))}\n" + "".join(
        f"{k}: {v}\n" for k, v in headers)
    raw = (head + draw(mime())).replace("\n", draw(nl))
    data = raw.encode("utf-8", "surrogatepass")
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return data if cut is None else data[:cut]


def _check_record(rec):
    for value in (rec.text or "", rec.html or "", rec.subject, rec.from_name, *rec.to, *rec.cc):
        assert not has_controls(value), repr(value)
    ex = extract_author_text(rec.text, rec.html)
    for value in (ex.text, ex.quoted or "", *(z.text for z in ex.removed)):
        assert not has_controls(value), repr(value)


def _parse_everything(raw: bytes):
    with deadline(30):
        assert header_problem(raw) in (None, "header_too_large", "too_many_headers", "header_field_too_large")
        try:
            rec = parse_message(raw, source="fuzz")
        except BadMessage:
            rec = None
        if rec is not None:
            _check_record(rec)
        stats = SourceStats()
        kept = process_raw(raw, source="fuzz", labels=(), user_emails=frozenset({ME}), stats=stats)
        assert not any(k.startswith("unexpected_") for k in stats.errors), stats.as_dict()
        if kept is not None:
            _check_record(kept)


@BOUNDED
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw):
    _parse_everything(raw)


@BOUNDED
@given(message())
def test_structured_hostile_mime(raw):
    _parse_everything(raw)


@BOUNDED
@given(text, st.one_of(st.none(), text.map(lambda t: f"<div>{t}<blockquote>{t}</blockquote>&#27;[31m&#x9b;</div>")))
def test_cleaner_never_returns_controls(body, html):
    with deadline(30):
        ex = extract_author_text(body, html)
        for value in (ex.text, ex.quoted or "", *(z.text for z in ex.removed)):
            assert not has_controls(value), repr(value)
        if html:
            assert not has_controls(html_to_text(html))


@BOUNDED
@given(text)
def test_strip_controls_is_total_and_idempotent(s):
    once = strip_controls(s)
    assert not has_controls(once) and "\r" not in once
    assert strip_controls(once) == once


@BOUNDED
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=4, max_size=30),
       st.sampled_from(["postgresql", "postgres", "imaps", "https"]))
def test_redact_url_never_shows_a_password(pw, scheme):
    from hypothesis import assume

    from mailvoice.redact import redact_url

    host = "db.example.com:5432/mail"
    assume(pw.strip() and pw not in f"{scheme}://***@{host}")
    for url in (f"{scheme}://dana:{pw}@{host}", f"{scheme}://{host}?sslmode=require&password={pw}",
                f"{scheme}://dana:{pw}@{host}?application_name=x#frag"):
        assert pw not in redact_url(url), url
