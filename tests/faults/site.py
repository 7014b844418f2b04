"""A deployment of real ``reelserve serve`` and ``reelserve worker`` processes for the
fault cases, with short leases and a fast reaper, plus a direct view of its store.

Workers run the ``fake`` engine profile: it stands in for a GPU model (none can run
here), taking timed denoising steps and reporting progress like the real engines, and its
frames go through the real MP4 writer and blob store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from reelserve.store import SqlStore, connect
from tests.acceptance.harness import Deployment, Process
from tests.faults.invariants import Tally, check_invariants

MODEL = "kling-ai/kling-v2.6"
GRANTED = 1000  # the first-start workspace's credits (REELSERVE_INITIAL_CREDITS)
TERMINAL = ("COMPLETED", "FAILED", "CANCELED")


def fast_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {
        "REELSERVE_DATA_DIR": str(data_dir),
        "REELSERVE_LEASE_S": "1.5",
        "REELSERVE_RETRY_BACKOFF_S": "0.1",
        "REELSERVE_REAPER_INTERVAL_S": "0.25",
        "REELSERVE_WORKER_POLL_S": "0.1",
        "REELSERVE_MAX_ATTEMPTS": "5",
        "REELSERVE_INITIAL_CREDITS": str(GRANTED),
        "REELSERVE_CREATES_PER_MINUTE": "0",
        "REELSERVE_MAX_ACTIVE_PER_KEY": "0",
    }
    if database_url:
        env["REELSERVE_DATABASE_URL"] = database_url
    return env


@dataclass
class Site:
    deployment: Deployment
    db_url: str
    backend: str
    data_dir: Path
    _store: SqlStore | None = field(default=None, repr=False)

    @property
    def store(self) -> SqlStore:
        """The deployment's store, opened once the server has migrated it."""
        if self._store is None:
            self._store = SqlStore(connect(self.db_url))
        return self._store

    def close(self) -> None:
        self.deployment.stop_all()
        if self._store is not None:
            self._store.engine.dispose()

    @property
    def workspace_id(self) -> str:
        found = self.store.find_workspace("default")
        assert found is not None
        return found.id

    def worker(self, steps: int = 2, step_s: float = 0.01, **env: str) -> Process:
        return self.deployment.start_worker(
            "fake", REELSERVE_FAKE_STEPS=str(steps), REELSERVE_FAKE_STEP_S=str(step_s), **env
        )

    def submit(self, prompt: str = "a lighthouse in a storm") -> str:
        response = httpx.post(
            f"{self.deployment.base}/generation/{MODEL}",
            json={"prompt": prompt},
            headers=self.deployment.headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def status(self, gen_id: str) -> str:
        gen = self.store.get(gen_id)
        assert gen is not None
        return gen.status.value

    def wait_status(self, gen_id: str, wanted: tuple[str, ...], timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(gen_id)
            if status in wanted:
                return status
            time.sleep(0.05)
        raise AssertionError(f"{gen_id} never reached {wanted}: {self.store.get(gen_id)}")

    def check(self) -> Tally:
        return check_invariants(
            self.store,
            self.workspace_id,
            GRANTED,
            outputs_dir=self.data_dir / "files" / "outputs",
        )

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.text()}" for p in self.deployment.processes)


def died_of_sigkill(process: Process, timeout: float = 60.0) -> None:
    code = process.popen.wait(timeout)
    assert code == -9, f"{process.name} exited with {code}, not by SIGKILL:\n{process.text()}"


def wait_stopped(process: Process, timeout: float = 60.0) -> None:
    """Until the process is in state T (stopped by a signal)."""
    deadline = time.monotonic() + timeout
    stat = Path(f"/proc/{process.popen.pid}/stat")
    while time.monotonic() < deadline:
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "T":
            return
        assert process.popen.poll() is None, process.text()
        time.sleep(0.05)
    raise AssertionError(f"{process.name} never stopped:\n{process.text()}")


def wait_log(process: Process, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in process.text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never logged by {process.name}:\n{process.text()}")


@contextmanager
def open_site(root: Path, backend: str, db_url: str) -> Iterator[Site]:
    data_dir = root / "data"
    deployment = Deployment(root=root, env=fast_env(data_dir, db_url or None))
    site = Site(
        deployment,
        db_url or f"sqlite:///{(data_dir / 'reelserve.db').resolve()}",
        backend,
        data_dir,
    )
    try:
        yield site
    finally:
        site.close()


def record_of(site: Site, gen_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{site.deployment.base}/generation/{gen_id}", headers=site.deployment.headers, timeout=10
    )
    assert response.status_code == 200, response.text
    return dict(response.json())
