"""An in-process service for API tests: the real app, store (SQLite), blobs and media
code, with an embedded worker running the FakeEngine (a GPU model cannot run in tests;
the tiny diffusers pipelines are exercised by tests/engines and tests/acceptance)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reelserve.api import create_app
from reelserve.cli.embedded import background, build_worker
from reelserve.core.ledger import Bucket
from reelserve.core.render import Mode
from reelserve.engines.fake import FakeEngine
from reelserve.services.keys import create_key
from reelserve.settings import Settings
from reelserve.store import SqlStore

MODEL = "kling-ai/kling-v2.6"
MOTION_MODEL = "kling-ai/motion-control-v2.6"


@dataclass
class Service:
    client: TestClient
    store: SqlStore
    settings: Settings
    key: str
    workspace_id: str
    engine: FakeEngine | None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def create(self, body: dict[str, Any], model: str = MODEL, **kw: Any) -> Any:
        headers = {**self.auth, **kw.pop("headers", {})}
        return self.client.post(f"/api/v1/generation/{model}", json=body, headers=headers, **kw)

    def get(self, gen_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/generation/{gen_id}", headers=self.auth)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(
        self,
        gen_id: str,
        timeout: float = 30.0,
        until: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        done = until or (lambda r: r["status"] in ("COMPLETED", "FAILED", "CANCELED"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.get(gen_id)
            if done(record):
                return record
            time.sleep(0.05)
        raise AssertionError(f"{gen_id} did not get there in {timeout}s: {record}")

    def credits(self) -> dict[str, Any]:
        return dict(self.client.get("/api/v1/credits", headers=self.auth).json())

    def grant(self, permanent: int = 0, subscription: int = 0) -> None:
        if permanent:
            self.store.grant(self.workspace_id, Bucket.PERMANENT, permanent)
        if subscription:
            self.store.grant(self.workspace_id, Bucket.SUBSCRIPTION, subscription)


ServiceFactory = Callable[..., Service]


@pytest.fixture
def make_service(settings: Settings, sqlite_store: SqlStore) -> Iterator[ServiceFactory]:
    stack: list[Any] = []

    def make(
        *,
        worker: bool = True,
        steps: int = 3,
        seconds_per_step: float = 0.0,
        credits: int = 1000,
        register_remote_worker: bool = True,
        sound: bool = True,
        capabilities: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> Service:
        conf = Settings(**{**settings.__dict__, **overrides})
        engine = None
        if worker:
            engine = FakeEngine(steps=steps, seconds_per_step=seconds_per_step, sound=sound)
        the_worker = None
        if engine is not None:
            engines = {m: engine for m in Mode}
            the_worker = build_worker(conf, sqlite_store, engines, True, capabilities=capabilities)
        elif register_remote_worker:
            # Stands for a worker on another host: the API only needs it registered.
            sqlite_store.register_worker(
                "wrk_remote", "remote", [MODEL, MOTION_MODEL], {"profile": "fake"}
            )
        app = create_app(conf, store=sqlite_store)
        context = background(sqlite_store, conf, the_worker)
        context.__enter__()
        stack.append(context)
        if the_worker is not None:
            deadline = time.monotonic() + 5
            while not sqlite_store.served_models(60) and time.monotonic() < deadline:
                time.sleep(0.01)
        client = TestClient(app, raise_server_exceptions=False)
        stack.append(client)
        new_key = create_key(sqlite_store, "acme")
        workspace = sqlite_store.find_workspace("acme")
        assert workspace is not None
        if credits:
            sqlite_store.grant(workspace.id, Bucket.PERMANENT, credits)
        return Service(client, sqlite_store, conf, new_key.key, workspace.id, engine)

    yield make
    for item in reversed(stack):
        if isinstance(item, TestClient):
            item.close()
        else:
            item.__exit__(None, None, None)


@pytest.fixture
def service(make_service: ServiceFactory) -> Service:
    return make_service()


@pytest.fixture
def queued_service(make_service: ServiceFactory) -> Service:
    """No worker in this process: tasks stay IN_QUEUE."""
    return make_service(worker=False)


def assert_error(response: Any, status: int, code: str, mentions: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "code", "message"}
    assert body["error"] == body["code"] == code
    if mentions is not None:
        assert mentions in body["message"], body["message"]
