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

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from reelserve.client import AsyncClient, Backoff, Client
from reelserve.engines.fake import FakeEngine
from tests.live_service import LiveService, start_service

# Retries in tests wait milliseconds, not seconds.
FAST = Backoff(initial=0.01, maximum=0.05)


@dataclass
class Account:
    server: LiveService
    key: str
    workspace: str

    def client(self, **kw: Any) -> Client:
        kw.setdefault("backoff", FAST)
        return Client(base_url=self.server.base_url, api_key=self.key, **kw)

    def async_client(self, **kw: Any) -> AsyncClient:
        kw.setdefault("backoff", FAST)
        return AsyncClient(base_url=self.server.base_url, api_key=self.key, **kw)


def account(server: LiveService, credits: int = 1000) -> Account:
    key, name = server.new_account("ws", credits)
    return Account(server, key, name)


@pytest.fixture(scope="package")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """Tasks run to the end on the FakeEngine."""
    yield from start_service(tmp_path_factory.mktemp("live"), FakeEngine(steps=3))


@pytest.fixture(scope="package")
def queued_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """Tasks stay IN_QUEUE: no worker in this process."""
    yield from start_service(tmp_path_factory.mktemp("queued"), None)


@pytest.fixture
def live(live_server: LiveService) -> Account:
    return account(live_server)


@pytest.fixture
def queued(queued_server: LiveService) -> Account:
    return account(queued_server)


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
