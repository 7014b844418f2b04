"""HttpCoordinator against a real API on loopback (uvicorn, SQLite, local blobs).

The worker side here talks HTTP only; the store is touched directly just to set the scene
(a token, an account) and to check the outcome. The FakeEngine stands in for the GPU
model (a real one cannot run in tests); its frames go through the real MP4 writer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelserve.api import create_app
from reelserve.blobs import LocalBlobs
from reelserve.cli.embedded import background
from reelserve.core.errors import LeaseLost
from reelserve.core.ledger import Bucket
from reelserve.core.ports import Blobs
from reelserve.core.records import Generation
from reelserve.core.render import Mode
from reelserve.engines.fake import FakeEngine
from reelserve.services.keys import create_key
from reelserve.services.worker_tokens import create_worker_token
from reelserve.settings import Settings
from reelserve.store import SqlStore, SqlWorkerTokens, connect, upgrade
from reelserve.worker.inputs import FetchPolicy
from reelserve.worker.remote import HttpCoordinator, RetryPolicy
from reelserve.worker.runner import Worker, WorkerConfig
from tests.fixtures import LANDSCAPE_PNG
from tests.live_service import serve_app

MODEL = "kling-ai/kling-v2.6"
MODELS = [MODEL, "kling-ai/motion-control-v2.6"]
FAST = RetryPolicy(initial_s=0.01, max_s=0.05, finish_s=1.0, register_s=1.0, beat_s=0.1)


@dataclass
class Api:
    base_url: str
    store: SqlStore
    settings: Settings
    token: str
    key: str
    workspace_id: str
    server: ExitStack
    cleanup: ExitStack

    def coordinator(self, **kwargs: Any) -> HttpCoordinator:
        made = HttpCoordinator(self.base_url, self.token, retry=FAST, **kwargs)
        self.cleanup.callback(made.close)
        return made

    def create(self, **body: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.base_url}/generation/{MODEL}",
            json={"prompt": "x", **body},
            headers={"Authorization": f"Bearer {self.key}"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def record(self, gen_id: str) -> dict[str, Any]:
        return dict(
            httpx.get(
                f"{self.base_url}/generation/{gen_id}",
                headers={"Authorization": f"Bearer {self.key}"},
            ).json()
        )


@contextmanager
def running_api(tmp_path: Path, blobs: Blobs | None = None) -> Iterator[Api]:
    """The real app on loopback; ``blobs`` replaces the blob store of the internal routes."""
    settings = Settings(
        data_dir=tmp_path / "data",
        lease_s=2.0,
        retry_backoff_s=0.05,
        reaper_interval_s=0.2,
        allow_private_urls=True,
    )
    db = connect(f"sqlite:///{tmp_path / 'reelserve.db'}")
    upgrade(db)
    store = SqlStore(db)
    token = create_worker_token(SqlWorkerTokens(db), "gpu").token
    key = create_key(store, "acme").key
    workspace = store.find_workspace("acme")
    assert workspace is not None
    store.grant(workspace.id, Bucket.PERMANENT, 1000)
    app = create_app(settings, store=store)
    if blobs is not None:
        app.state.reelserve_workers = replace(app.state.reelserve_workers, blobs=blobs)
    with ExitStack() as stack:
        stack.enter_context(background(store, settings, None))
        server = ExitStack()
        base_url = server.enter_context(serve_app(app))
        stack.callback(server.close)
        cleanup = stack.enter_context(ExitStack())
        yield Api(base_url, store, settings, token, key, workspace.id, server, cleanup)
    db.dispose()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with running_api(tmp_path) as running:
        yield running


def _claimed(coordinator: HttpCoordinator, worker_id: str) -> Generation:
    gen = coordinator.claim(worker_id, MODELS)
    assert gen is not None
    return gen


def _output(gen: Generation) -> dict[str, Any]:
    key = f"outputs/{gen.workspace_id}/{gen.id}-{gen.attempt}.mp4"
    return {"type": "video", "videos": [{"key": key}]}


def test_a_worker_cannot_act_on_a_task_it_does_not_hold(api: Api) -> None:
    first, second = api.coordinator(claim_wait_s=0), api.coordinator(claim_wait_s=3)
    first.register("wrk_first", "first", MODELS, {})
    second.register("wrk_second", "second", MODELS, {})
    created = api.create()
    gen = _claimed(first, "wrk_first")
    assert (gen.id, gen.attempt, gen.lease_owner) == (created["id"], 1, "wrk_first")

    # Someone else's task: every fenced call is 409 → LeaseLost.
    with pytest.raises(LeaseLost):
        second.heartbeat(gen, "wrk_second", 50)
    with pytest.raises(LeaseLost):
        second.complete(gen, "wrk_second", _output(gen))
    with pytest.raises(LeaseLost):
        second.fail(gen, "wrk_second", "VIDEO_GENERATION_FAILED", "no")
    with pytest.raises(LeaseLost):
        second.canceled(gen, "wrk_second")
    assert first.heartbeat(gen, "wrk_first", 30).cancel_requested is False

    # The attempt moves on: the task goes back to the queue and the other worker takes it.
    first.fail(gen, "wrk_first", "VIDEO_GENERATION_FAILED", "try again", retry=True)
    again = _claimed(second, "wrk_second")
    assert (again.id, again.attempt) == (gen.id, 2)
    with pytest.raises(LeaseLost):
        first.heartbeat(gen, "wrk_first", 60)
    with pytest.raises(LeaseLost):
        first.complete(gen, "wrk_first", _output(gen))
    with pytest.raises(LeaseLost):
        first.complete(again, "wrk_first", _output(again))

    done = second.complete(again, "wrk_second", _output(again))
    assert done.status.value == "COMPLETED"
    record = api.record(gen.id)
    assert record["status"] == "COMPLETED"
    assert record["usage"]["total"] == created["usage"]["total"]
    # A retried completion whose first answer was lost is recognised, not refused.
    assert second.complete(again, "wrk_second", _output(again)).attempt == 2
    balances = api.store.balances(api.workspace_id)
    assert balances.total == 1000 - created["usage"]["total"]


def test_claim_returns_as_soon_as_a_task_is_created_during_the_wait(api: Api) -> None:
    coordinator = api.coordinator(claim_wait_s=20)
    coordinator.register("wrk_waiting", "waiting", MODELS, {})
    result: dict[str, Any] = {}

    def wait_for_work() -> None:
        started = time.monotonic()
        result["gen"] = coordinator.claim("wrk_waiting", MODELS)
        result["waited"] = time.monotonic() - started

    thread = threading.Thread(target=wait_for_work)
    thread.start()
    time.sleep(0.5)  # the claim is waiting on the server by now
    assert thread.is_alive()
    created = api.create()
    thread.join(timeout=25)
    assert result["gen"] is not None
    assert result["gen"].id == created["id"]
    # Woken by the create, not by the end of the 20 s wait.
    assert result["waited"] < 10


def test_claim_answers_nothing_after_its_wait_on_an_empty_queue(api: Api) -> None:
    coordinator = api.coordinator(claim_wait_s=0.6)
    started = time.monotonic()
    assert coordinator.claim("wrk_idle", MODELS) is None
    assert time.monotonic() - started >= 0.6


def test_an_unreachable_api_costs_the_job_only_once_its_lease_has_run_out(api: Api) -> None:
    coordinator = api.coordinator(claim_wait_s=0)
    coordinator.register("wrk_cut_off", "cut off", MODELS, {})
    api.create()
    gen = _claimed(coordinator, "wrk_cut_off")
    api.server.close()  # the API goes away; the worker keeps its job for now
    with pytest.raises(httpx.TransportError):
        coordinator.heartbeat(gen, "wrk_cut_off", 10)
    time.sleep(api.settings.lease_s + 0.1)
    with pytest.raises(LeaseLost):
        coordinator.heartbeat(gen, "wrk_cut_off", 20)
    # A claim that cannot get through waits a little and reports no work.
    assert coordinator.claim("wrk_cut_off", MODELS) is None


@contextmanager
def remote_worker(api: Api, tmp_path: Path, engine: FakeEngine) -> Iterator[None]:
    """A Worker in a thread, reaching the API only over HTTP, for the block's duration."""
    coordinator = api.coordinator(claim_wait_s=1)
    worker = Worker(
        coordinator,
        {mode: engine for mode in Mode},
        coordinator.files(),
        WorkerConfig(
            lease_s=api.settings.lease_s,
            poll_s=0.0,
            fetch=FetchPolicy(timeout_s=10, allow_private=True),
            profile="fake",
            random_weights=True,
            scratch_dir=tmp_path / "scratch",
        ),
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not api.store.served_models(60) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def _until(api: Api, gen_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    record = api.record(gen_id)
    while record["status"] not in statuses and time.monotonic() < deadline:
        time.sleep(0.1)
        record = api.record(gen_id)
    return record


def _run_one_upload(api: Api, tmp_path: Path, engine: FakeEngine) -> dict[str, Any]:
    """A worker thread over HTTP runs a task created with an uploaded image."""
    with remote_worker(api, tmp_path, engine):
        with LANDSCAPE_PNG.open("rb") as image:
            response = httpx.post(
                f"{api.base_url}/generation/{MODEL}",
                data={"prompt": "the waves roll in"},
                files={"image_url": ("start.png", image)},
                headers={"Authorization": f"Bearer {api.key}"},
            )
        assert response.status_code == 200, response.text
        return _until(api, response.json()["id"], ("COMPLETED", "FAILED"))


def test_a_cancel_reaches_a_remote_worker_through_its_heartbeat(api: Api, tmp_path: Path) -> None:
    engine = FakeEngine(steps=200, seconds_per_step=0.05)
    with remote_worker(api, tmp_path, engine):
        created = api.create()
        running = _until(api, created["id"], ("IN_PROGRESS",))
        assert running["status"] == "IN_PROGRESS"
        canceled = httpx.post(
            f"{api.base_url}/generation/{created['id']}/cancel",
            headers={"Authorization": f"Bearer {api.key}"},
        )
        assert canceled.status_code == 200, canceled.text
        record = _until(api, created["id"], ("CANCELED",))
    assert record["status"] == "CANCELED"
    assert record["usage"]["total"] == 0
    assert api.store.balances(api.workspace_id).total == 1000


def test_a_worker_runs_a_task_over_http_with_an_uploaded_input(api: Api, tmp_path: Path) -> None:
    engine = FakeEngine(steps=3, seconds_per_step=0.05)
    record = _run_one_upload(api, tmp_path, engine)
    assert record["status"] == "COMPLETED", record
    assert engine.renders == 1
    video = record["data"]["video"]
    download = httpx.get(video["url"])
    assert download.status_code == 200
    assert download.content[4:8] == b"ftyp"  # an MP4 file
    assert record["usage"]["total"] == 20
    assert api.store.balances(api.workspace_id).total == 1000 - 20
    assert not api.store.served_models(60)  # unregistered on stop


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None


@contextmanager
def bucket_stand_in(root: Path) -> Iterator[tuple[str, list[Seen]]]:
    """A loopback HTTP server playing an S3 bucket's presigned URLs (S3 cannot run here):
    PUT stores the body under ``root``, GET serves it, and every request is recorded."""
    seen: list[Seen] = []

    class Handler(BaseHTTPRequestHandler):
        def _key(self) -> Path:
            return root / self.path.split("?", 1)[0].removeprefix("/bucket/")

        def do_PUT(self) -> None:
            seen.append(Seen("PUT", self.path, self.headers.get("Authorization")))
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self._key().parent.mkdir(parents=True, exist_ok=True)
            self._key().write_bytes(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            seen.append(Seen("GET", self.path, self.headers.get("Authorization")))
            body = self._key().read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/bucket", seen
    finally:
        server.shutdown()
        server.server_close()


class PresigningBlobs(LocalBlobs):
    """The local folder, but handing out presigned links as S3 does."""

    def __init__(self, root: Path, bucket_url: str) -> None:
        super().__init__(root)
        self.bucket_url = bucket_url

    def presigned_get(self, key: str, ttl_s: float) -> str | None:
        return f"{self.bucket_url}/{key}?X-Amz-Expires={int(ttl_s)}&X-Amz-Signature=get"

    def presigned_put(self, key: str, ttl_s: float) -> str | None:
        return f"{self.bucket_url}/{key}?X-Amz-Expires={int(ttl_s)}&X-Amz-Signature=put"


def test_presigned_links_carry_the_files_and_never_the_worker_token(tmp_path: Path) -> None:
    blobs_root = tmp_path / "data" / "files"
    with (
        bucket_stand_in(blobs_root) as (bucket_url, seen),
        running_api(tmp_path, PresigningBlobs(blobs_root, bucket_url)) as api,
    ):
        record = _run_one_upload(api, tmp_path, FakeEngine(steps=2))
        stored = api.store.get(record["id"])
    assert record["status"] == "COMPLETED", record
    assert stored is not None
    assert stored.data is not None
    assert [(s.method, s.path.split("/")[2]) for s in seen] == [
        ("GET", "uploads"),  # the task's image, fetched by the worker
        ("PUT", "outputs"),  # its video, stored by the worker
    ]
    assert all(s.authorization is None for s in seen)
    output = blobs_root / stored.data["videos"][0]["key"]
    assert output.read_bytes()[4:8] == b"ftyp"
