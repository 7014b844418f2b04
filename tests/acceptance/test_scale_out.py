"""Scale-out with real processes: two API replicas and three remote workers on PostgreSQL
and an S3-compatible server (moto, on loopback), 50 tasks, SSE read from a replica other
than the one that took the create, one replica killed mid-way and started again.

Every task ends exactly once, COMPLETED, with its credits captured once; the ledger
balances. The workers hold no database URL: they speak only to the API's internal routes.
The ``fake`` engine stands in for a GPU model (none runs here); the rest is the real code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelserve.store import SqlStore, connect
from tests.acceptance.harness import Process, free_port, reelserve, spawn
from tests.conftest import assert_ledger_balanced, fresh_postgres_url
from tests.s3_server import S3Server

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]

MODEL = "kling-ai/kling-v2.6"
TASKS = 50
TERMINAL = ("COMPLETED", "FAILED", "CANCELED")


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_postgres_url()


class Replica:
    def __init__(self, root: Path, env: dict[str, str], index: int) -> None:
        self.root, self.env, self.index = root, env, index
        self.port = free_port()
        self.process: Process | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.popen.poll() is None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> None:
        self.starts += 1
        self.process = spawn(
            self.root,
            f"api{self.index}-{self.starts}",
            ["serve", "--no-worker", "--port", str(self.port)],
            self.env,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.popen.poll() is None, self.process.text()
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"replica {self.index} did not start:\n{self.process.text()}")


def follow_sse(base: str, gen_id: str, headers: dict[str, str], out: dict[str, Any]) -> None:
    """Read the task's event stream to its end, reconnecting with Last-Event-ID; records the
    statuses seen and how many times the stream was cut."""
    last_id: str | None = None
    statuses: list[str] = []
    cuts = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        request_headers = dict(headers)
        if last_id:
            request_headers["Last-Event-ID"] = last_id
        try:
            with httpx.stream(
                "GET",
                f"{base}/generation/{gen_id}/events",
                headers=request_headers,
                timeout=httpx.Timeout(30, read=60),
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("id:"):
                        last_id = line[3:].strip()
                    elif line.startswith("data:"):
                        status = json.loads(line[5:])["status"]
                        statuses.append(status)
                        if status in TERMINAL:
                            out[gen_id] = (statuses, cuts)
                            return
        except httpx.HTTPError:
            cuts += 1
            time.sleep(0.5)
    out[gen_id] = (statuses, cuts)


def test_two_replicas_three_remote_workers_fifty_tasks_one_replica_killed(
    tmp_path: Path, pg_url: str, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    env = {
        "REELSERVE_DATABASE_URL": pg_url,
        "REELSERVE_DATA_DIR": str(tmp_path / "data"),
        "REELSERVE_PROFILE": "fake",
        "REELSERVE_FAKE_STEPS": "3",
        "REELSERVE_FAKE_STEP_S": "0.3",
        "REELSERVE_LEASE_S": "4",
        "REELSERVE_REAPER_INTERVAL_S": "0.5",
        "REELSERVE_RETRY_BACKOFF_S": "0.2",
        "REELSERVE_CREATES_PER_MINUTE": "0",
        "REELSERVE_MAX_ACTIVE_PER_KEY": "0",
        "REELSERVE_SECRET": "scale-out-test-secret",
        **{f"REELSERVE_{k.upper()}": v for k, v in s3_server.settings_overrides(bucket).items()},
    }
    reelserve("db", "upgrade", env=env)
    key = reelserve("keys", "create", "--workspace", "studio", env=env).strip().split()[-1]
    reelserve("credits", "grant", "--workspace", "studio", "--permanent", "10000", env=env)
    token = reelserve("workers", "token", "create", "--name", "gpu", env=env).strip()
    headers = {"Authorization": f"Bearer {key}"}

    replicas = [Replica(tmp_path, env, i) for i in range(2)]
    for replica in replicas:
        replica.start()
    # Workers get no database URL and no S3 credentials: only the API and their token.
    private = ("REELSERVE_DATABASE", "REELSERVE_S3", "REELSERVE_BLOB")
    worker_env = {k: v for k, v in env.items() if not k.startswith(private)}
    workers = []
    for index in range(3):
        target = replicas[1] if index else replicas[0]
        workers.append(
            spawn(
                tmp_path,
                f"worker{index}",
                ["worker", "--api-url", target.base, "--worker-token", token],
                {**worker_env, "REELSERVE_DATA_DIR": str(tmp_path / f"w{index}")},
            )
        )

    deadline = time.monotonic() + 120
    while MODEL not in httpx.get(f"{replicas[0].base}/readyz", timeout=10).json().get("models", {}):
        assert time.monotonic() < deadline, "no worker registered in time"
        time.sleep(0.5)

    created: list[dict[str, Any]] = []
    streams: dict[str, Any] = {}
    followers: list[threading.Thread] = []
    for index in range(TASKS):
        replica = replicas[index % 2]
        if not replica.alive:
            replica = replicas[1]
        if index == TASKS // 2:
            assert replicas[0].process is not None
            replicas[0].process.kill()  # mid-way: replica 0 dies with streams open on it
            replica = replicas[1]
        if index == TASKS // 2 + 10:
            replicas[0].start()  # and comes back
        response = httpx.post(
            f"{replica.base}/generation/{MODEL}",
            json={"prompt": f"shot {index}", "generate_audio": False},
            headers={**headers, "Idempotency-Key": f"shot-{index}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        record = response.json()
        created.append(record)
        if index % 5 == 0:
            # SSE from the other replica (or the surviving one while replica 0 is down).
            other = replicas[1] if replica is replicas[0] else replicas[0]
            if not other.alive:
                other = replicas[1]
            thread = threading.Thread(
                target=follow_sse, args=(other.base, record["id"], headers, streams)
            )
            thread.start()
            followers.append(thread)

    deadline = time.monotonic() + 240
    final: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(final) < TASKS:
        for record in created:
            if record["id"] in final:
                continue
            got = httpx.get(
                f"{replicas[1].base}/generation/{record['id']}", headers=headers, timeout=30
            ).json()
            if got["status"] in TERMINAL:
                final[record["id"]] = got
        time.sleep(0.5)
    for thread in followers:
        thread.join(timeout=60)
    for process in [*workers, *(r.process for r in replicas if r.process)]:
        process.stop()

    assert len(final) == TASKS, f"{TASKS - len(final)} tasks never finished"
    assert {r["status"] for r in final.values()} == {"COMPLETED"}
    assert len(streams) == TASKS // 5
    for gen_id, (statuses, _) in streams.items():
        assert statuses, gen_id
        assert statuses[-1] == "COMPLETED", (gen_id, statuses)
    # The kill cut streams that were open on replica 0; they resumed and still saw the end.
    assert sum(cuts for _, cuts in streams.values()) >= 1
    for record in final.values():
        video = record["data"]["videos"][0]
        download = httpx.get(video["url"], timeout=30)
        assert download.status_code == 200
        assert download.content[4:8] == b"ftyp"

    engine = connect(pg_url)
    try:
        store = SqlStore(engine)
        workspace = store.find_workspace("studio")
        assert workspace is not None
        assert_ledger_balanced(store, workspace.id)
        charged = sum(r["usage"]["total"] for r in final.values())
        assert store.balances(workspace.id).total == 10000 - charged
        for gen_id in final:
            terminal = [e for e in store.events_after(gen_id, 0) if e.status.value in TERMINAL]
            assert len(terminal) == 1, (gen_id, terminal)
    finally:
        engine.dispose()
