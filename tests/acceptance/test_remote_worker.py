"""A worker on "another host": ``reelserve worker --api-url ... --worker-token ...`` in its
own process, with its own data folder and no database URL, working for a
``reelserve serve --no-worker`` process over loopback HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from reelserve.core.ledger import EntryKind
from reelserve.media import probe_output
from reelserve.settings import Settings
from reelserve.store import SqlStore, connect
from tests.acceptance.harness import Deployment, Process, reelserve

pytestmark = pytest.mark.slow
MODEL = "kling-ai/kling-v2.6"


def _remote_worker(deployment: Deployment, token: str, home: Path) -> Process:
    """Started with none of the server's settings: only the API's URL and a token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSERVE_")}
    env.update({"REELSERVE_DATA_DIR": str(home), "REELSERVE_PROFILE": "fake"})
    log = deployment.root / f"remote-worker-{len(deployment.processes)}.log"
    args = ["worker", "--api-url", deployment.base, "--worker-token", token]
    with log.open("w") as handle:
        popen = subprocess.Popen(
            [sys.executable, "-m", "reelserve", *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    process = Process("remote-worker", popen, log)
    deployment.processes.append(process)
    return process


def _serving(worker: Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert worker.popen.poll() is None, f"worker exited:\n{worker.text()}"
        if "serving" in worker.text():
            return
        time.sleep(0.2)
    raise AssertionError(f"worker never started serving:\n{worker.text()}")


def test_a_remote_worker_completes_a_task_without_database_credentials(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.start_server("--no-worker")
    token = reelserve("workers", "token", "create", "--name", "gpu-1", env=deployment.env).strip()
    assert token.startswith("rsw_")
    home = tmp_path / "worker-host"
    worker = _remote_worker(deployment, token, home)
    _serving(worker)
    ready = httpx.get(f"{deployment.base}/readyz").json()
    assert MODEL in ready["models"]

    created = httpx.post(
        f"{deployment.base}/generation/{MODEL}",
        json={"prompt": "a lighthouse at dusk"},
        headers=deployment.headers,
    ).json()
    record = deployment.wait(created["id"], timeout=60)
    assert record["status"] == "COMPLETED", (record, worker.text())
    assert record["usage"]["total"] == 20

    video = record["data"]["video"]
    path = tmp_path / "out.mp4"
    path.write_bytes(httpx.get(video["url"], timeout=30).content)
    info = probe_output(path)
    assert (info.width, info.height, info.video_codec) == (1280, 720, "h264")

    credits = httpx.get(f"{deployment.base}/credits", headers=deployment.headers).json()
    assert credits["total"] == 1000 - 20
    settings = Settings(
        data_dir=Path(deployment.env["REELSERVE_DATA_DIR"]),
        database_url=deployment.env.get("REELSERVE_DATABASE_URL"),
    )
    engine = connect(settings.db_url)
    try:
        entries = SqlStore(engine).ledger_for(created["id"])
    finally:
        engine.dispose()
    captures = [entry for entry in entries if entry["kind"] == EntryKind.CAPTURE.value]
    assert len(captures) == 1
    assert captures[0]["amount"] == 20
    # The worker kept nothing of the service's state on its host.
    assert not (home / "reelserve.db").exists()
    assert not (home / "files").exists()

    worker.stop()
    assert worker.popen.returncode == 0, worker.text()
    assert "could not unregister" not in worker.text()


def test_a_worker_with_a_revoked_token_is_refused(deployment: Deployment, tmp_path: Path) -> None:
    deployment.start_server("--no-worker")
    token = reelserve("workers", "token", "create", env=deployment.env).strip()
    reelserve("workers", "token", "revoke", token[:12], env=deployment.env)
    worker = _remote_worker(deployment, token, tmp_path / "worker-host")
    assert worker.popen.wait(60) != 0
    assert "worker token" in worker.text()
