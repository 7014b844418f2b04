"""Real reelserve servers on loopback for the client-side commands, and a runner of the
``reelserve`` command as a subprocess (``python -m reelserve``, stdin/stdout/stderr not a
terminal, so the plain progress output is what is seen).

Each server is the real app (``create_app``) served by uvicorn on a free port in a
background thread, over a real SQLite store, blobs and media code. The ``live`` one also
runs the embedded worker with the FakeEngine, which stands in for the GPU model (a real
one cannot run in tests): it takes timed steps, reports progress and honours cancel as
the real engines do, and its output goes through the real MP4 writer. The ``queued`` one
has no worker (a remote one is registered), so its tasks stay IN_QUEUE.

The servers live while this package's tests run; every test gets its own workspace, key
and credits, so tests never see each other's tasks or balances.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
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
from reelserve.client import Backoff, Client
from reelserve.core.ledger import Bucket
from reelserve.core.render import Mode
from reelserve.engines.fake import FakeEngine
from reelserve.services.keys import create_key
from reelserve.settings import Settings
from reelserve.store import SqlStore, connect, upgrade

MODEL = "kling-ai/kling-v2.6"
MOTION_MODEL = "kling-ai/motion-control-v2.6"
REMOTE_WORKER = "wrk_remote"

_names = itertools.count()


@dataclass
class Account:
    server: Server
    key: str
    workspace: str

    def client(self) -> Client:
        return Client(
            base_url=self.server.base_url,
            api_key=self.key,
            backoff=Backoff(initial=0.01, maximum=0.05),
        )

    @property
    def env(self) -> dict[str, str]:
        return {"REELSERVE_BASE_URL": self.server.base_url, "REELSERVE_API_KEY": self.key}


@dataclass
class Server:
    base_url: str
    store: SqlStore
    worker: bool

    def account(self, credits: int = 1000) -> Account:
        if not self.worker:
            self.store.touch_worker(REMOTE_WORKER)  # keep the stand-in worker fresh
        name = f"cli{next(_names)}"
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
    the_worker = None
    if worker:
        # Timed steps, so that progress is reported more than once on the way.
        engine = FakeEngine(steps=4, seconds_per_step=0.3)
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
            yield Server(base_url, store, worker)
    db.dispose()


@pytest.fixture(scope="package")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Tasks run to the end on the FakeEngine."""
    yield from _start(tmp_path_factory.mktemp("cli-live"), worker=True)


@pytest.fixture(scope="package")
def queued_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Tasks stay IN_QUEUE: no worker in this process."""
    yield from _start(tmp_path_factory.mktemp("cli-queued"), worker=False)


@pytest.fixture
def live(live_server: Server) -> Account:
    return live_server.account()


@pytest.fixture
def queued(queued_server: Server) -> Account:
    return queued_server.account()


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "reelserve", *args]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without REELSERVE_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSERVE_")}
    env.update({"COLUMNS": "100", "NO_COLOR": "1"})
    env.update(extra or {})
    return env


@dataclass
class Cli:
    """Runs ``python -m reelserve`` in a folder of its own, with no terminal attached."""

    cwd: Path

    def __call__(
        self, *args: str, account: Account | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command(*args),
            cwd=self.cwd,
            env=clean_env(account.env if account is not None else None),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
