"""The review page: escaping, highlighting, removed zones, numbers, determinism, privacy."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailvoice.dataset.build import DatasetOptions, build_dataset
from mailvoice.dataset.review import PLACEHOLDER_RE, build_review, write_review
from mailvoice.errors import MailvoiceError
from mailvoice.sources.jsonl import write_records
from mailvoice.sources.record import MailRecord

EVIL = "m-evil@example.com"
QUOTED = "m-quoted@example.com"
SCRIPT = "<script>alert(1)</script>"
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "div", "main", "h1", "h2", "h3", "h4", "p", "section",
    "span", "table", "caption", "tr", "th", "td", "br", "svg", "line", "text", "rect", "article", "header",
    "code", "pre", "details", "summary", "mark", "footer",
}  # fmt: skip


def _rec(i: int, body: str, *, mid: str | None = None, subject: str | None = None) -> MailRecord:
    return MailRecord(
        message_id=mid or f"m{i}@example.com",
        thread_id=f"t{i}",
        date=f"2024-03-{i + 1:02d}T10:00:00+00:00",
        from_addr="dana@example.com",
        to=("sam@example.com",),
        subject=f"Week {i}" if subject is None else subject,
        text=body,
    )


def sample_records() -> list[MailRecord]:
    recs = []
    for i in range(10):
        extra = " We can also move the review to Friday if the printer needs more time." * (i % 4)
        recs.append(
            _rec(
                i,
                f"Hi Sam,\n\nThe draft for week {i} looks good to me.{extra} Call me on (415) 555-01{i:02d} "
                f"or write to sam{i}@example.com if anything changes.\n\nThanks,\nDana\n\n-- \nDana Park\n"
                "Willow Creek Design\n",
            )
        )
    recs.append(
        _rec(
            10,
            f"Hi Sam,\n\nPlease don't paste {SCRIPT} into the form & tell Tom & Jerry. "
            "Details at https://example.com/launch?a=1&b=2 tonight.\n\nThanks,\nDana\n\n"
            "-- \nDana <img src=x onerror=alert(2)> Park\n",
            mid=EVIL,
            subject="Q&A <b>launch</b>",
        )
    )
    recs.append(
        _rec(
            11,
            "Sounds good, let's meet Tuesday at the studio to go over it.\n\nDana\n\n"
            "On Mon, Mar 3, 2024 at 9:00 AM Sam <sam@example.com> wrote:\n> Can we meet next week?\n"
            "> I have questions about the <logo> & colours.\n",
            mid=QUOTED,
        )
    )
    recs.append(_rec(12, "Thanks!"))  # too short
    recs.append(_rec(13, recs[0].text))  # duplicate text
    return recs


def make_dataset(out_dir: Path, *, with_records: bool = True) -> dict:
    recs = sample_records()
    meta = build_dataset(recs, out_dir, DatasetOptions(min_emails=3))
    if with_records:
        write_records(recs, out_dir / "records.jsonl")
    return meta


def eid(message_id: str) -> str:
    return hashlib.sha256(message_id.encode()).hexdigest()[:16]


class Tags(HTMLParser):
    """Every element of a page, plus the texts of the big numbers (data-stat → value)."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.stats: dict[str, str] = {}
        self._stat: str | None = None
        self._in_value = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "data-stat" in a:
            self._stat = a["data-stat"]
        if self._stat and a.get("class") == "value":
            self._in_value = True

    def handle_data(self, data):
        if self._in_value and self._stat:
            self.stats[self._stat] = data.strip()
            self._in_value, self._stat = False, None

    def count(self, tag: str, cls: str | None = None) -> int:
        return sum(1 for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split()))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("review") / "data"
    make_dataset(d)
    return d


@pytest.fixture(scope="module")
def page(dataset):
    return build_review(dataset, sample=100)  # every example


def test_email_text_is_escaped_everywhere(page):
    h = page.html
    assert "<script" not in h.lower() and "<img" not in h.lower() and "<b>" not in h and "<logo>" not in h
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in h  # kept text
    assert "Tom &amp; Jerry" in h
    assert "Q&amp;A &lt;b&gt;launch&lt;/b&gt;" in h  # instruction (subject)
    assert "&lt;img src=x onerror=alert(2)&gt;" in h  # removed signature zone
    assert "&lt;logo&gt; &amp; colours" in h  # quoted context and quote zone
    tags = Tags(h)
    assert {t for t, _ in tags.tags} <= ALLOWED_TAGS
    assert not any(k.startswith("on") for _, a in tags.tags for k in a)


def test_placeholders_are_highlighted(page):
    evil = next(c for c in page.samples if c.id == eid(EVIL))
    assert "<URL>" in evil.output
    card = re.search(rf'<article class="sample" id="ex-{evil.id}">.*?</article>', page.html, re.DOTALL).group(0)
    assert '<mark class="pii" title="a web link was replaced">&lt;URL&gt;</mark>' in card
    expected = sum(len(PLACEHOLDER_RE.findall(c.output + c.input + c.instruction)) for c in page.samples)
    assert expected >= 20
    assert Tags(page.html).count("mark", "pii") == expected


def test_removed_zones_recomputed_from_records(page):
    assert page.records_found
    by_id = {c.id: c for c in page.samples}
    quoted = by_id[eid(QUOTED)]
    assert [z.kind for z in quoted.zones] == ["quote"]
    assert "Can we meet next week?" in quoted.zones[0].text and quoted.zones[0].reason
    assert "Can we meet next week?" in quoted.input  # the context the model is given
    sigs = [c for c in page.samples if c.zones and any(z.kind == "signature" for z in c.zones)]
    assert len(sigs) >= 10
    assert page.html.count('data-kind="quote"') == 1
    assert page.html.count('data-kind="signature"') == sum(
        1 for c in page.samples for z in c.zones if z.kind == "signature"
    )
    assert "<details open" not in page.html  # collapsed
    assert "Willow Creek Design" not in "".join(c.output for c in page.samples)  # removed, not kept
    assert "Willow Creek Design" in page.html  # but shown under "removed"


def test_numbers_match_the_manifest(dataset, page):
    meta = json.loads((dataset / "dataset_alpaca.json").read_text())["metadata"]
    c = meta["counts"]
    assert Tags(page.html).stats == {
        "records": str(c["records"]),
        "examples": str(c["examples"]),
        "train": str(c["train"]),
        "val": str(c["val"]),
    }
    assert (c["records"], c["examples"], c["train"] + c["val"]) == (14, 12, 12)
    rows = dict(page.summary)
    assert rows["training examples"] == f"12 (train {c['train']}, val {c['val']})"
    assert meta["dropped"] == {"too_short": 1, "duplicate_text": 1}
    assert rows["dropped"] == "same text as another email 1, too short 1"
    assert rows["PII replaced"] == ", ".join(
        f"{k} {v}" for k, v in sorted(meta["pii"].items(), key=lambda kv: (-kv[1], kv[0]))
    )
    assert f"train {meta['split']['train_threads']}, val {meta['split']['val_threads']}" == rows["threads"]
    assert rows["dates"] == "2024-03-01 10:00 UTC → 2024-03-12 10:00 UTC"
    bars = re.findall(r'<rect class="bar"[^>]*data-count="(\d+)"', page.html)
    assert sum(map(int, bars)) == c["examples"] and len(bars) > 1


def test_sample_is_deterministic(dataset):
    a, b = build_review(dataset, sample=4, seed=1), build_review(dataset, sample=4, seed=1)
    assert a.html == b.html and len(a.samples) == 4
    ids = [c.id for c in a.samples]
    assert len(set(ids)) == 4
    others = {tuple(c.id for c in build_review(dataset, sample=4, seed=s).samples) for s in range(2, 8)}
    assert len(others | {tuple(ids)}) > 1
    assert a.html.count('<article class="sample"') == 4
    assert len(build_review(dataset, sample=0).samples) == 0


def test_write_review_is_private_and_self_contained(dataset):
    path = write_review(dataset, sample=5)
    assert path == dataset / "review.html"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    h = path.read_text()
    head, body = h.split("<body>", 1)
    assert 'http-equiv="Content-Security-Policy"' in head
    assert "default-src 'none'" in head and "script-src 'none'" in head
    assert body.startswith('<div class="private"') and "contains your own email" in body[:300]
    assert not re.search(r"https?:|//[a-z]|\b(src|href)=", h, re.IGNORECASE)  # nothing to load, nothing linked
    out = write_review(dataset, dataset / "sub" / "mine.html", sample=2)
    assert out.is_file() and stat.S_IMODE(out.stat().st_mode) == 0o600


def test_without_records_jsonl_the_page_still_renders(tmp_path):
    make_dataset(tmp_path / "d", with_records=False)
    p = build_review(tmp_path / "d", sample=3)
    assert not p.records_found and all(c.zones is None for c in p.samples)
    assert "records.jsonl is missing" in p.html


def test_missing_manifest_is_one_line_error(tmp_path):
    with pytest.raises(MailvoiceError, match="no dataset_alpaca.json"):
        build_review(tmp_path)
    (tmp_path / "dataset_alpaca.json").write_text("{not json")
    with pytest.raises(MailvoiceError, match="not a readable dataset manifest"):
        build_review(tmp_path)


def test_cli_review_prints_numbers_not_mail(dataset, tmp_path, capsys, monkeypatch):
    from mailvoice.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "page.html"
    assert main(["review", str(dataset), "--sample", "3", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text().count('<article class="sample"') == 3
    assert "training examples" in text and "PII replaced" in text and str(out) in text
    for secret in ("draft for week", "script", "Jerry", "Sam", "Willow", "example.com"):
        assert secret not in text
    assert main(["review", str(tmp_path / "nothing")]) == 1
    assert "error: no dataset_alpaca.json" in capsys.readouterr().err


def test_review_removes_what_training_removed_stored_signatures_included(tmp_path):
    """A signature stored in EmailAI (known to prepare, seen in one email only, so not learnable)
    is removed in training; the review reads the same clean-profile.json and shows it removed."""
    recs = sample_records()
    stored = "Onward and upward, as the orchard crew always says on Tuesdays"
    recs[11] = _rec(11, "Sounds good, let's meet Tuesday at the studio to go over it.\n\nDana\n" + stored + "\n",
                    mid=QUOTED)
    d = tmp_path / "data"
    build_dataset(recs, d, DatasetOptions(min_emails=3), known_signatures=[stored])
    write_records(recs, d / "records.jsonl")
    card = {c.id: c for c in build_review(d, sample=100).samples}[eid(QUOTED)]
    assert "orchard crew" not in card.output
    assert any("orchard crew" in z.text for z in card.zones)
