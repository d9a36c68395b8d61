"""Readers stream: ingesting a 20k-message mbox keeps peak traced memory small and flat."""

from __future__ import annotations

import tracemalloc
from email.message import EmailMessage

from mailvoice.sources import SourceStats, read_sources

ME = "me@example.com"
N = 20_000
PARA = "This is a line of ordinary text written by me, long enough to look like mail.\n" * 20


def _template() -> bytes:
    m = EmailMessage()
    m["From"] = f"Me <{ME}>"
    m["To"] = "friend@example.org"
    m["Subject"] = "MSGNO"
    m["Date"] = "Tue, 02 Jan 2024 10:00:00 +0000"
    m["Message-ID"] = "<MSGNO@example.com>"
    m.set_content("Hi,\nFrom now on this line needs escaping.\n" + PARA)
    return m.as_bytes().replace(b"\nFrom now", b"\n>From now")


def test_20k_mbox_ingest_has_flat_memory(tmp_path):
    tpl = _template()
    p = tmp_path / "big.mbox"
    with open(p, "wb") as f:
        for i in range(N):
            f.write(b"From me@example.com Tue Jan  2 10:00:00 2024\n")
            f.write(tpl.replace(b"MSGNO", b"m%06d" % i))
            f.write(b"\n")
    size = p.stat().st_size
    assert size > 30 * 1024 * 1024

    stats = SourceStats()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        count = 0
        text_ok = True
        for rec in read_sources([str(p)], user_emails=[ME], stats=stats):
            count += 1
            if count in (1, N):
                text_ok &= rec.text.startswith("Hi,\nFrom now on")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = peak - base
    assert count == N and stats.kept == N and text_ok
    # The only thing that grows with N is the dedupe set (16-byte keys): ~2 MB for 20k.
    assert growth < 8 * 1024 * 1024, f"peak grew by {growth / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB mbox"
