"""Tasks end to end through the worker with its engines in an engine process: the API, the
store (SQLite), the worker and its tracker, and engines opened in a spawned child by the
composition root's ``load_engines`` with the production factories."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reelserve.api import create_app
from reelserve.cli.embedded import background, build_worker, load_engines
from reelserve.core.ledger import Bucket
from reelserve.core.render import Mode
from reelserve.services.keys import create_key
from reelserve.settings import Settings
from reelserve.store import SqlStore
from reelserve.worker.supervisor import CancelOutcome, ChildEngine, EngineSupervisor

pytestmark = pytest.mark.slow

MODEL = "kling-ai/kling-v2.6"
TERMINAL = ("COMPLETED", "FAILED", "CANCELED")


@dataclass
class Served:
    client: TestClient
    key: str
    supervisor: EngineSupervisor
    store: SqlStore

    def create(self, prompt: str) -> str:
        response = self.client.post(
            f"/api/v1/generation/{MODEL}", json={"prompt": prompt}, headers=self.auth
        )
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def get(self, gen_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/generation/{gen_id}", headers=self.auth)
        return dict(response.json())

    def wait(self, gen_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        while not done(record := self.get(gen_id)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return record

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def serve(
    settings: Settings, sqlite_store: SqlStore, models_dir: Path
) -> Iterator[Callable[..., Served]]:
    stack: list[tuple[EngineSupervisor, Any, TestClient]] = []

    def start(**overrides: Any) -> Served:
        conf = replace(settings, engine_process="child", models_path=models_dir, **overrides)
        loaded = load_engines(conf)
        text_engine = loaded.engines[Mode.TEXT]
        assert isinstance(text_engine, ChildEngine)
        worker = build_worker(
            conf,
            sqlite_store,
            loaded.engines,
            loaded.random_weights,
            capabilities=loaded.capabilities,
        )
        assert MODEL in worker.models
        key = create_key(sqlite_store, "acme")
        sqlite_store.grant(sqlite_store.ensure_workspace("acme").id, Bucket.PERMANENT, 1000)
        running = background(sqlite_store, conf, worker)
        running.__enter__()
        client = TestClient(create_app(conf, store=sqlite_store))
        stack.append((text_engine.supervisor, running, client))
        return Served(client, key.key, text_engine.supervisor, sqlite_store)

    yield start
    for supervisor, running, client in stack:
        client.close()
        running.__exit__(None, None, None)
        supervisor.close()


def test_a_tiny_task_completes_through_the_engine_process(serve: Callable[..., Served]) -> None:
    served = serve(profile="tiny")
    pid = served.supervisor.pid

    gen_id = served.create("a cat")
    record = served.wait(gen_id, lambda r: r["status"] in TERMINAL)

    assert record["status"] == "COMPLETED", record
    assert record["progress"] == 100
    video = record["data"]["videos"][0]
    assert (video["width"], video["height"], video["has_audio"]) == (1280, 720, True)
    progress = [event.snapshot["progress"] for event in served.store.events_after(gen_id, 0)]
    assert all(a <= b for a, b in itertools.pairwise(progress)), progress
    assert progress[-1] == 100
    # Heartbeats sample progress (at most every 2 s), so a fast tiny render may show only
    # one value between queued and done; the cancel test below proves the child's steps
    # reach the tracker while it renders.
    assert len(set(progress)) >= 3, progress
    assert served.supervisor.pid == pid


def test_canceling_a_running_task_stops_the_engine_process_job(
    serve: Callable[..., Served],
) -> None:
    # The fake engine: a render long and steady enough (60 steps of 0.1 s) to cancel halfway
    # every time, which the tiny models (a fraction of a second) cannot give.
    served = serve(profile="fake", fake_steps=60, fake_step_s=0.1)
    pid = served.supervisor.pid
    gen_id = served.create("a cat")
    served.wait(gen_id, lambda r: r["progress"] >= 30 or r["status"] in TERMINAL)

    canceled = served.client.post(f"/api/v1/generation/{gen_id}/cancel", headers=served.auth)
    assert canceled.status_code == 200, canceled.text
    record = served.wait(gen_id, lambda r: r["status"] in TERMINAL)

    assert record["status"] == "CANCELED", record
    assert record["progress"] < 100
    assert served.supervisor.last_cancel is CancelOutcome.STOPPED
    assert served.supervisor.pid == pid
    assert served.client.get("/api/v1/credits", headers=served.auth).json()["total"] == 1000
