"""The review page rendered by a real browser (headless Chromium, Debian package ``chromium``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_dataset_review import SCRIPT, Tags, make_dataset

from mailvoice.dataset.review import write_review

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)),
    reason="needs headless Chromium at /usr/bin/chromium (apt-get install -y chromium)",
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1100,2000",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chromium")
    data = tmp / "data"
    meta = make_dataset(data)
    page = write_review(data, sample=100)  # every example, the malicious one included
    shot = tmp / "review.png"
    dom = chromium(tmp, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    pic = chromium(tmp, f"--screenshot={shot}", page.as_uri())
    assert pic.returncode == 0, pic.stderr[-2000:]
    return meta, page, dom.stdout, shot


def test_rendered_numbers_and_cards(rendered):
    meta, _, dom, _ = rendered
    tags = Tags(dom)
    c = meta["counts"]
    assert tags.stats == {k: str(c[k]) for k in ("records", "examples", "train", "val")}
    assert tags.count("article", "sample") == c["examples"] == 12
    assert tags.count("mark", "pii") >= 20  # phones, addresses and a URL were replaced
    assert tags.count("div", "private") == 1 and "contains your own email" in dom
    assert tags.count("details") >= 12 and not any("open" in a for t, a in tags.tags if t == "details")


def test_rendered_histogram_has_bars(rendered):
    meta, _, dom, _ = rendered
    tags = Tags(dom)
    bars = [a for t, a in tags.tags if t == "rect" and a.get("class") == "bar"]
    assert len(bars) > 1
    assert sum(int(a["data-count"]) for a in bars) == meta["counts"]["examples"]
    assert sum(1 for a in bars if float(a["height"]) > 0) >= 2


def test_malicious_text_stayed_text(rendered):
    _, page, dom, _ = rendered
    tags = Tags(dom)
    assert tags.count("script") == 0 and tags.count("img") == 0 and tags.count("b") == 0
    assert "<script" not in dom.lower()
    manifest = json.loads((page.parent / "dataset_alpaca.json").read_text())
    assert any(SCRIPT in r["output"] for r in manifest["records"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "Tom &amp; Jerry" in dom


def test_screenshot_is_written(rendered):
    *_, shot = rendered
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (w, h) == (1100, 2000)
