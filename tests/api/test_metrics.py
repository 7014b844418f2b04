"""``/metrics`` scraped from the real app after real tasks ran: the store (SQLite), the
embedded worker (FakeEngine for the GPU model) and the reaper share one set of metrics,
as ``reelserve serve`` wires them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from reelserve.api import create_app
from reelserve.cli.embedded import background, build_metrics, build_worker
from reelserve.core.errors import GenerationFailed
from reelserve.core.ledger import Bucket
from reelserve.core.render import Mode
from reelserve.engines.fake import FakeEngine
from reelserve.services.keys import create_key
from reelserve.settings import Settings
from reelserve.store import SqlStore

MODEL = "kling-ai/kling-v2.6"


@dataclass
class Scraped:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def named(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for sample, labels in self.samples if sample == name]


@dataclass
class Server:
    client: TestClient
    engine: FakeEngine
    settings: Settings
    auth: dict[str, str]

    def scrape(self, path: str = "/metrics") -> Scraped:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return Scraped(samples)

    def create(self, body: dict[str, object]) -> str:
        response = self.client.post(f"/api/v1/generation/{MODEL}", json=body, headers=self.auth)
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def wait(self, gen_id: str) -> dict[str, object]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            record = self.client.get(f"/api/v1/generation/{gen_id}", headers=self.auth).json()
            if record["status"] in ("COMPLETED", "FAILED", "CANCELED"):
                return dict(record)
            time.sleep(0.05)
        raise AssertionError(f"{gen_id} did not end")


@pytest.fixture
def server(settings: Settings, sqlite_store: SqlStore) -> Iterator[Server]:
    engine = FakeEngine(steps=2)
    metrics = build_metrics(sqlite_store)
    worker = build_worker(settings, sqlite_store, {m: engine for m in Mode}, True, metrics=metrics)
    app = create_app(settings, store=sqlite_store, prometheus=metrics)
    with background(sqlite_store, settings, worker, metrics):
        deadline = time.monotonic() + 5
        while not sqlite_store.served_models(60) and time.monotonic() < deadline:
            time.sleep(0.01)
        key = create_key(sqlite_store, "acme").key
        workspace = sqlite_store.find_workspace("acme")
        assert workspace is not None
        sqlite_store.grant(workspace.id, Bucket.PERMANENT, 1000)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Server(client, engine, settings, {"Authorization": f"Bearer {key}"})


def test_a_completed_and_a_failed_task_are_counted(server: Server) -> None:
    done = server.wait(server.create({"prompt": "a cat"}))
    assert done["status"] == "COMPLETED"
    charge = done["usage"]["total"]  # type: ignore[index]
    server.engine.fail_with = GenerationFailed("the engine broke")
    failed = server.wait(server.create({"prompt": "a dog", "generate_audio": False}))
    assert failed["status"] == "FAILED"
    price_of_failed = 15  # 3 credits a second without audio, 5 s

    scraped = server.scrape()
    assert scraped.value("reelserve_credits_reserved_total") == charge + price_of_failed
    assert scraped.value("reelserve_credits_captured_total") == charge
    assert scraped.value("reelserve_credits_released_total") == price_of_failed
    assert scraped.value("reelserve_task_failures_total", code="VIDEO_GENERATION_FAILED") == 1
    assert scraped.value("reelserve_tasks_ended_total", status="COMPLETED") == 1
    assert scraped.value("reelserve_claim_wait_seconds_count", model=MODEL) == 2
    generation = scraped.named("reelserve_generation_seconds_count")
    assert generation == [{"mode": "text-to-video", "quality": "standard", "profile": "tiny"}]
    assert (
        scraped.value(
            "reelserve_generation_seconds_count",
            mode="text-to-video",
            quality="standard",
            profile="tiny",
        )
        == 1
    )
    assert scraped.value("reelserve_queue_depth", model=MODEL) == 0
    assert scraped.value("reelserve_tasks_running", model=MODEL) == 0


def test_http_latency_is_labelled_by_route_template(server: Server) -> None:
    gen_id = server.create({"prompt": "a cat"})
    server.wait(gen_id)
    server.client.get("/api/v1/generation/gen_nope", headers=server.auth)
    server.client.get("/no/such/route")

    routes = {
        labels["route"]
        for labels in server.scrape().named("reelserve_http_request_duration_seconds_count")
    }
    assert "/api/v1/generation/{route}" in routes
    assert "/api/v1/generation/{generation_id}" in routes
    assert "unmatched" in routes
    assert not any(gen_id in route or "gen_nope" in route for route in routes)
    scraped = server.scrape()
    created = scraped.value(
        "reelserve_http_request_duration_seconds_count",
        method="POST",
        route="/api/v1/generation/{route}",
        status="200",
    )
    assert created == 1
    missing = scraped.value(
        "reelserve_http_request_duration_seconds_count",
        method="GET",
        route="/api/v1/generation/{generation_id}",
        status="404",
    )
    assert missing == 1


def test_queue_gauges_and_cancel_release(settings: Settings, sqlite_store: SqlStore) -> None:
    """No worker here: tasks wait, the gauges count them, a cancel releases the reserve."""
    sqlite_store.register_worker("wrk_remote", "remote", [MODEL], {"profile": "fake"})
    app = create_app(settings, store=sqlite_store)
    key = create_key(sqlite_store, "acme").key
    workspace = sqlite_store.find_workspace("acme")
    assert workspace is not None
    sqlite_store.grant(workspace.id, Bucket.PERMANENT, 1000)
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:
        ids = [
            client.post(f"/api/v1/generation/{MODEL}", json={"prompt": "x"}, headers=auth).json()[
                "id"
            ]
            for _ in range(3)
        ]
        client.post(f"/api/v1/generation/{ids[0]}/cancel", headers=auth)
        text = client.get("/api/v1/metrics").text  # served under the API prefix too
    scraped = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert scraped[("reelserve_queue_depth", (("model", MODEL),))] == 2
    assert scraped[("reelserve_queue_depth", (("model", "kling-ai/motion-control-v2.6"),))] == 0
    assert scraped[("reelserve_credits_reserved_total", ())] == 60
    assert scraped[("reelserve_credits_released_total", ())] == 20
    assert scraped[("reelserve_tasks_ended_total", (("status", "CANCELED"),))] == 1


def test_open_sse_streams_are_a_gauge(server: Server) -> None:
    server.engine.steps = 200
    server.engine.seconds_per_step = 0.02  # long enough to look at it while it streams
    gen_id = server.create({"prompt": "a cat"})
    with server.client.stream(
        "GET", f"/api/v1/generation/{gen_id}/events", headers=server.auth
    ) as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        assert server.scrape().value("reelserve_sse_streams_open") == 1
        server.client.post(f"/api/v1/generation/{gen_id}/cancel", headers=server.auth)
        for _ in lines:  # to the terminal event, where the stream closes
            pass
    deadline = time.monotonic() + 5
    while server.scrape().value("reelserve_sse_streams_open") != 0:
        assert time.monotonic() < deadline, "the closed stream is still counted"
        time.sleep(0.05)


def test_metrics_need_no_key_and_bear_concurrent_scrapes(server: Server) -> None:
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            server.scrape()
        except BaseException as exc:  # collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=scrape) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
