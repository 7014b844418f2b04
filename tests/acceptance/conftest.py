"""Deployments of real processes on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.harness import Deployment
from tests.conftest import fresh_postgres_url

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny checkpoints are built once and shared by every deployment of the session."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, models_dir: Path
) -> Iterator[Deployment]:
    env = {
        "REELSERVE_DATA_DIR": str(tmp_path / "data"),
        "REELSERVE_MODELS_PATH": str(models_dir),
        "REELSERVE_LEASE_S": "3",
        "REELSERVE_RETRY_BACKOFF_S": "0.2",
        "REELSERVE_REAPER_INTERVAL_S": "0.5",
        "REELSERVE_WORKER_POLL_S": "0.2",
    }
    urls = fresh_postgres_url() if request.param == "postgres" else iter([""])
    url = next(urls)
    if url:
        env["REELSERVE_DATABASE_URL"] = url
    deployment = Deployment(root=tmp_path, env=env)
    try:
        yield deployment
    finally:
        deployment.stop_all()
        for _ in urls:  # runs the PostgreSQL schema's clean-up
            pass
