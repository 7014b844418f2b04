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

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reelserve.client import Backoff, Client
from reelserve.engines.fake import FakeEngine
from tests.live_service import LiveService, start_service


@dataclass
class Account:
    server: LiveService
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


def account(server: LiveService, credits: int = 1000) -> Account:
    key, name = server.new_account("cli", credits)
    return Account(server, key, name)


@pytest.fixture(scope="package")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """Tasks run to the end on the FakeEngine, in timed steps so that progress is
    reported more than once on the way."""
    engine = FakeEngine(steps=4, seconds_per_step=0.3)
    yield from start_service(tmp_path_factory.mktemp("cli-live"), engine)


@pytest.fixture(scope="package")
def queued_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """Tasks stay IN_QUEUE: no worker in this process."""
    yield from start_service(tmp_path_factory.mktemp("cli-queued"), None)


@pytest.fixture
def live(live_server: LiveService) -> Account:
    return account(live_server)


@pytest.fixture
def queued(queued_server: LiveService) -> Account:
    return account(queued_server)


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
