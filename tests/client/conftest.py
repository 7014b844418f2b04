"""Real reelserve servers on loopback for the SDK's tests.

Each server is the real app (``create_app``) served by uvicorn on a free port in a
background thread, over a real SQLite store, real blobs and media code, built the way
tests/api/conftest.py builds its service. The ``live`` server also runs the embedded
worker with the FakeEngine (a GPU model cannot run in tests); the ``queued`` one has no
worker (a remote one is registered), so its tasks stay IN_QUEUE.

The servers live while this package's tests run (starting them is the slow part); every
test gets its own workspace, key and credits, so tests never see each other's tasks or
balances.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from reelserve.api import create_app
from reelserve.cli.embedded import background, build_worker
from reelserve.client import AsyncClient, Backoff, Client
from reelserve.core.ledger import Bucket
from reelserve.core.render import Mode
from reelserve.engines.fake import FakeEngine
from reelserve.services.keys import create_key
from reelserve.settings import Settings
from reelserve.store import SqlStore, connect, upgrade

MODEL = "kling-ai/kling-v2.6"
MOTION_MODEL = "kling-ai/motion-control-v2.6"
REMOTE_WORKER = "wrk_remote"
# Retries in tests wait milliseconds, not seconds.
FAST = Backoff(initial=0.01, maximum=0.05)

_names = itertools.count()


@dataclass
class Account:
    server: Server
    key: str
    workspace: str

    def client(self, **kw: Any) -> Client:
        kw.setdefault("backoff", FAST)
        return Client(base_url=self.server.base_url, api_key=self.key, **kw)

    def async_client(self, **kw: Any) -> AsyncClient:
        kw.setdefault("backoff", FAST)
        return AsyncClient(base_url=self.server.base_url, api_key=self.key, **kw)


@dataclass
class Server:
    base_url: str
    store: SqlStore
    settings: Settings
    engine: FakeEngine | None

    def account(self, credits: int = 1000) -> Account:
        if self.engine is None:
            self.store.touch_worker(REMOTE_WORKER)  # keep the stand-in worker fresh
        name = f"ws{next(_names)}"
        key = create_key(self.store, name).key
        workspace = self.store.find_workspace(name)
        assert workspace is not None
        if credits:
            self.store.grant(workspace.id, Bucket.PERMANENT, credits)
        return Account(self, key, name)


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start in 10 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _start(root: Path, *, worker: bool) -> Iterator[Server]:
    settings = Settings(
        data_dir=root / "data",
        lease_s=5.0,
        retry_backoff_s=0.1,
        worker_poll_s=0.05,
        allow_private_urls=True,
    )
    db = connect(f"sqlite:///{root / 'reelserve.db'}")
    upgrade(db)
    store = SqlStore(db)
    wakeup = threading.Event()
    engine = FakeEngine(steps=3) if worker else None
    the_worker = None
    if engine is not None:
        the_worker = build_worker(settings, store, {m: engine for m in Mode}, True, wakeup)
    else:
        store.register_worker(REMOTE_WORKER, "remote", [MODEL, MOTION_MODEL], {"profile": "fake"})
    app = create_app(settings, store=store, on_submitted=wakeup.set)
    with background(store, settings, the_worker):
        if the_worker is not None:
            deadline = time.monotonic() + 5
            while not store.served_models(60) and time.monotonic() < deadline:
                time.sleep(0.01)
        with _serve(app) as base_url:
            yield Server(base_url, store, settings, engine)
    db.dispose()


@pytest.fixture(scope="package")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Tasks run to the end on the FakeEngine."""
    yield from _start(tmp_path_factory.mktemp("live"), worker=True)


@pytest.fixture(scope="package")
def queued_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Tasks stay IN_QUEUE: no worker in this process."""
    yield from _start(tmp_path_factory.mktemp("queued"), worker=False)


@pytest.fixture
def live(live_server: Server) -> Account:
    return live_server.account()


@pytest.fixture
def queued(queued_server: Server) -> Account:
    return queued_server.account()


@pytest.fixture
def client(live: Account) -> Iterator[Client]:
    with live.client() as c:
        yield c


@pytest.fixture
def qclient(queued: Account) -> Iterator[Client]:
    with queued.client() as c:
        yield c


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
