"""A real reelserve service on loopback for tests of its HTTP clients (SDK, CLI).

The real app (``create_app``) is served by uvicorn on a free port in a background thread,
over a real SQLite store, blobs and media code. With an engine it also runs the embedded
worker; that engine is the FakeEngine, which stands in for a GPU model (a real one cannot
run in tests): it takes timed steps, reports progress and honours cancel as the real
engines do, and its output goes through the real MP4 writer. Without an engine a remote
worker is registered instead, so tasks are accepted and stay IN_QUEUE.
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

import uvicorn

from reelserve.api import create_app
from reelserve.cli.embedded import background, build_worker
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
class LiveService:
    base_url: str
    store: SqlStore
    settings: Settings
    engine: FakeEngine | None

    def new_account(self, prefix: str = "ws", credits: int = 1000) -> tuple[str, str]:
        """A fresh workspace with ``credits``: (API key, workspace name)."""
        if self.engine is None:
            self.store.touch_worker(REMOTE_WORKER)  # keep the stand-in worker fresh
        name = f"{prefix}{next(_names)}"
        key = create_key(self.store, name).key
        workspace = self.store.find_workspace(name)
        assert workspace is not None
        if credits:
            self.store.grant(workspace.id, Bucket.PERMANENT, credits)
        return key, name


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields its ``/api/v1`` base URL."""
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


def start_service(root: Path, engine: FakeEngine | None) -> Iterator[LiveService]:
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
    the_worker = None
    if engine is not None:
        the_worker = build_worker(settings, store, {m: engine for m in Mode}, True)
    else:
        store.register_worker(REMOTE_WORKER, "remote", [MODEL, MOTION_MODEL], {"profile": "fake"})
    app = create_app(settings, store=store)
    with background(store, settings, the_worker):
        if the_worker is not None:
            deadline = time.monotonic() + 5
            while not store.served_models(60) and time.monotonic() < deadline:
                time.sleep(0.01)
        with serve_app(app) as base_url:
            yield LiveService(base_url, store, settings, engine)
    db.dispose()
