"""A task end to end through the worker with its engines in an engine process: the API,
the store (SQLite), the worker and its tracker, and the tiny profile opened by the
production factory in a spawned child (the composition root's ``load_engines``)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reelserve.api import create_app
from reelserve.cli.embedded import background, build_worker, load_engines
from reelserve.core.ledger import Bucket
from reelserve.core.render import Mode
from reelserve.services.keys import create_key
from reelserve.settings import Settings
from reelserve.store import SqlStore
from reelserve.worker.supervisor import ChildEngine, EngineSupervisor

pytestmark = pytest.mark.slow

MODEL = "kling-ai/kling-v2.6"


@pytest.fixture
def client_and_supervisor(
    settings: Settings, sqlite_store: SqlStore, models_dir: Path
) -> Iterator[tuple[TestClient, str, EngineSupervisor]]:
    conf = replace(settings, profile="tiny", engine_process="child", models_path=models_dir)
    engines, random_weights = load_engines(conf)
    text_engine = engines[Mode.TEXT]
    assert isinstance(text_engine, ChildEngine)
    supervisor = text_engine.supervisor
    try:
        worker = build_worker(conf, sqlite_store, engines, random_weights)
        assert set(worker.models) == {MODEL, "kling-ai/motion-control-v2.6"}
        key = create_key(sqlite_store, "acme")
        sqlite_store.grant(sqlite_store.ensure_workspace("acme").id, Bucket.PERMANENT, 1000)
        with (
            background(sqlite_store, conf, worker),
            TestClient(create_app(conf, store=sqlite_store)) as client,
        ):
            yield client, key.key, supervisor
    finally:
        supervisor.close()


def test_a_task_completes_through_the_engine_process(
    client_and_supervisor: tuple[TestClient, str, EngineSupervisor], sqlite_store: SqlStore
) -> None:
    client, key, supervisor = client_and_supervisor
    auth = {"Authorization": f"Bearer {key}"}
    pid = supervisor.pid

    created = client.post(f"/api/v1/generation/{MODEL}", json={"prompt": "a cat"}, headers=auth)
    assert created.status_code == 200, created.text
    gen_id = created.json()["id"]
    deadline = time.monotonic() + 120
    while (record := client.get(f"/api/v1/generation/{gen_id}", headers=auth).json())[
        "status"
    ] not in ("COMPLETED", "FAILED", "CANCELED") and time.monotonic() < deadline:
        time.sleep(0.1)

    assert record["status"] == "COMPLETED", record
    assert record["progress"] == 100
    video = record["data"]["videos"][0]
    assert (video["width"], video["height"], video["has_audio"]) == (1280, 720, True)
    progress = [event.snapshot["progress"] for event in sqlite_store.events_after(gen_id, 0)]
    assert all(a <= b for a, b in itertools.pairwise(progress)), progress
    assert progress[-1] == 100
    assert len(set(progress)) > 3, "the engine process's steps reach the task's progress"
    assert supervisor.pid == pid
