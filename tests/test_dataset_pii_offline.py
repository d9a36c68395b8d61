"""The scrubber must work with networking impossible: no spaCy model download, no tldextract fetch."""

from __future__ import annotations

import socket
import sys

import pytest

from mailvoice.dataset import pii


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    pii._engine.cache_clear()
    pii._offline_tld.cache_clear()
    yield
    pii._engine.cache_clear()
    pii._offline_tld.cache_clear()


def test_scrub_offline(no_network):
    out = pii.scrub("Write to kwame.haddad@uni-bonn.de or li@mail.co.uk, card 4111-1111-1111-1111.")
    assert out.counts["EMAIL"] == 2 and out.counts["CARD"] == 1
    # the suffix list comes from the wheel's snapshot: a made-up TLD is not an address
    assert "<EMAIL>" not in pii.scrub("see build@ci.notarealtld").text
    assert not any(m.startswith("en_core_web") for m in sys.modules)
