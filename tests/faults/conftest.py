"""Fixtures of the fault cases: a deployment on SQLite or on the shared PostgreSQL
server (a fresh schema), and a private PostgreSQL cluster for the restart case."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_url
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
