"""Shared fixtures: a real store on SQLite and on PostgreSQL, real blobs, settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from reelserve.core.ledger import Bucket
from reelserve.core.ports import Workspace
from reelserve.settings import Settings
from reelserve.store import SqlStore, connect, upgrade

if TYPE_CHECKING:
    from tests.s3_server import S3Server

POSTGRES_URL = os.environ.get(
    "REELSERVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}"


_PG_PROBLEM: str | None = None
_PG_CHECKED = False


def postgres_problem() -> str | None:
    global _PG_PROBLEM, _PG_CHECKED
    if not _PG_CHECKED:
        _PG_PROBLEM, _PG_CHECKED = _postgres_reachable(), True
    return _PG_PROBLEM


def fresh_postgres_url() -> Iterator[str]:
    """A URL whose connections live in a new, empty schema (dropped afterwards)."""
    problem = postgres_problem()
    if problem:
        if os.environ.get("REELSERVE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{problem} (REELSERVE_REQUIRE_POSTGRES=1: the suite must not skip)")
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'reelserve.db'}"
    else:
        yield from fresh_postgres_url()


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    engine = connect(database_url)
    upgrade(engine)
    yield SqlStore(engine)
    engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    engine = connect(f"sqlite:///{tmp_path / 'reelserve.db'}")
    upgrade(engine)
    yield SqlStore(engine)
    engine.dispose()


def funded(
    store: SqlStore, name: str = "acme", subscription: int = 0, permanent: int = 0
) -> Workspace:
    workspace = store.ensure_workspace(name)
    if subscription:
        store.grant(workspace.id, Bucket.SUBSCRIPTION, subscription)
    if permanent:
        store.grant(workspace.id, Bucket.PERMANENT, permanent)
    return workspace


def assert_ledger_balanced(store: SqlStore, workspace_id: str) -> None:
    """The buckets always equal the sum of their ledger rows, and never go negative."""
    sums = store.ledger_sums(workspace_id)
    balances = store.raw_balances(workspace_id)
    assert sums == balances
    assert all(value >= 0 for value in balances.values())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", lease_s=5.0, retry_backoff_s=0.1, worker_poll_s=0.05
    )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3-compatible server on loopback for the session (moto, a dev dependency:
    imported here, not at the top, so that only S3 tests pay for loading it)."""
    from tests.s3_server import running_s3_server

    with running_s3_server() as server:
        yield server
