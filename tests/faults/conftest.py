"""Fixtures of the fault cases: a deployment on SQLite or on the shared PostgreSQL
server (a fresh schema), and a private PostgreSQL cluster for the restart case."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_url
from tests.faults.pg_cluster import REQUIRE_ENV, PgCluster, new_cluster
from tests.faults.site import Site, open_site


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    urls = fresh_postgres_url() if request.param == "postgres" else iter([""])
    url = next(urls)
    try:
        with open_site(tmp_path, request.param, url) as opened:
            yield opened
    finally:
        for _ in urls:  # drops the PostgreSQL schema
            pass


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    """A private PostgreSQL cluster, started; the test may stop and restart it."""
    made = new_cluster()
    if made is None:
        reason = "no PostgreSQL binaries under /usr/lib/postgresql/*/bin to run a private cluster"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1: the suite must not skip)")
        pytest.skip(reason)
    try:
        made.start()
        yield made
    finally:
        made.destroy()
