"""Fixtures for the media tests; the helpers behind them live in media_testkit.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from media_testkit import (
    FIXTURES_DIR,
    FakeDns,
    LocalCa,
    LoopbackServer,
    Tripwire,
    make_local_ca,
    serve,
    server_tls_context,
)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES_DIR


@pytest.fixture
def tripwire() -> Iterator[Tripwire]:
    """A listening socket on loopback; the test fails if anything connected to it."""
    wire = Tripwire()
    try:
        yield wire
        wire.assert_untouched()
    finally:
        wire.close()


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """DNS answers for names under .test (RFC 2606: they never resolve for real)."""
    dns = FakeDns()
    dns.install(monkeypatch)
    return dns


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    yield from serve(None)


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    return make_local_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https_server(local_ca: LocalCa) -> Iterator[LoopbackServer]:
    yield from serve(server_tls_context(local_ca))
