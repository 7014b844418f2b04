"""Reading, listing, canceling, idempotency, credits, files, health and OpenAPI."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlparse

from reelserve.services.keys import create_key
from tests.api.conftest import MODEL, Service, assert_error


def test_other_workspaces_tasks_are_not_found(queued_service: Service) -> None:
    record = queued_service.create({"prompt": "x"}).json()
    other_key = create_key(queued_service.store, "intruder").key
    headers = {"Authorization": f"Bearer {other_key}"}
    client = queued_service.client
    assert_error(
        client.get(f"/api/v1/generation/{record['id']}", headers=headers), 404, "NOT_FOUND"
    )
    assert_error(
        client.post(f"/api/v1/generation/{record['id']}/cancel", headers=headers), 404, "NOT_FOUND"
    )
    assert client.get("/api/v1/generations/running", headers=headers).json() == []
    assert_error(
        client.get("/api/v1/generation/gen_unknown", headers=queued_service.auth), 404, "NOT_FOUND"
    )


def test_running_list_and_queue_positions(queued_service: Service) -> None:
    ids = [queued_service.create({"prompt": f"p{i}"}).json()["id"] for i in range(3)]
    running = queued_service.client.get(
        "/api/v1/generations/running?limit=2&workspace=acme", headers=queued_service.auth
    ).json()
    assert isinstance(running, list)
    assert [item["id"] for item in running] == [ids[2], ids[1]]
    assert set(running[0]) == {"id", "status", "usage", "input"}
    assert [queued_service.get(i)["queue_position"] for i in ids] == [0, 1, 2]


def test_history_pages_with_a_cursor_and_filters(queued_service: Service) -> None:
    ids = [queued_service.create({"prompt": f"p{i}"}).json()["id"] for i in range(3)]
    queued_service.client.post(f"/api/v1/generation/{ids[0]}/cancel", headers=queued_service.auth)
    first = queued_service.client.get(
        "/api/v1/generations?limit=2", headers=queued_service.auth
    ).json()
    assert [r["id"] for r in first["items"]] == [ids[2], ids[1]]
    second = queued_service.client.get(
        f"/api/v1/generations?limit=2&cursor={first['next_cursor']}", headers=queued_service.auth
    ).json()
    assert [r["id"] for r in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None
    canceled = queued_service.client.get(
        "/api/v1/generations?status=CANCELED", headers=queued_service.auth
    ).json()
    assert [r["id"] for r in canceled["items"]] == [ids[0]]


def test_cancel_queued_is_immediate_and_refunds(queued_service: Service) -> None:
    record = queued_service.create({"prompt": "x"}).json()
    assert queued_service.credits()["total"] == 980
    response = queued_service.client.post(
        f"/api/v1/generation/{record['id']}/cancel", headers=queued_service.auth
    )
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELED"
    assert response.json()["usage"]["total"] == 0
    assert queued_service.credits()["total"] == 1000
    again = queued_service.client.post(
        f"/api/v1/generation/{record['id']}/cancel", headers=queued_service.auth
    )
    assert_error(again, 409, "CONFLICT", "already CANCELED")
    assert again.json()["record"]["id"] == record["id"]


def test_cancel_running_stops_at_the_next_step(make_service: Any) -> None:
    svc = make_service(steps=200, seconds_per_step=0.05)
    record = svc.create({"prompt": "x"}).json()
    svc.wait(record["id"], until=lambda r: r["status"] == "IN_PROGRESS" and r["progress"] > 5)
    asked = time.monotonic()
    response = svc.client.post(f"/api/v1/generation/{record['id']}/cancel", headers=svc.auth)
    assert response.status_code == 200
    done = svc.wait(record["id"], timeout=10)
    assert done["status"] == "CANCELED"
    assert time.monotonic() - asked < 5
    assert done["usage"]["total"] == 0
    assert done["data"] is None
    assert svc.credits()["total"] == 1000
    assert not list(svc.settings.blobs_dir.rglob("outputs/*/*.mp4"))


def test_idempotent_create_returns_the_first_task(queued_service: Service) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = queued_service.create({"prompt": "x"}, headers=headers).json()
    second = queued_service.create({"prompt": "x"}, headers=headers).json()
    assert second["id"] == first["id"]
    assert queued_service.credits()["total"] == 980
    conflict = queued_service.create({"prompt": "y"}, headers=headers)
    assert_error(conflict, 409, "CONFLICT", "Idempotency-Key")
    too_long = queued_service.create({"prompt": "x"}, headers={"Idempotency-Key": "k" * 256})
    assert_error(too_long, 400, "VIDEO_GENERATION_INVALID_INPUT", "Idempotency-Key")


def test_credits_report_both_buckets(queued_service: Service) -> None:
    queued_service.grant(subscription=15)
    queued_service.create({"prompt": "x"})
    assert queued_service.credits() == {
        "workspace": "acme",
        "subscription": 0,
        "permanent": 995,
        "total": 995,
        "subscription_period_end": None,
    }


def test_signed_file_links_refuse_tampering_and_expiry(service: Service) -> None:
    record = service.create({"prompt": "x"}).json()
    url = service.wait(record["id"])["data"]["video"]["url"]
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    path = parsed.path
    good = service.client.get(url)
    assert good.status_code == 200
    tampered = service.client.get(f"{path}?expires={query['expires'][0]}&signature={'0' * 64}")
    assert_error(tampered, 404, "NOT_FOUND")
    later = int(query["expires"][0]) + 10
    assert_error(
        service.client.get(f"{path}?expires={later}&signature={query['signature'][0]}"),
        404,
        "NOT_FOUND",
    )
    expired_sig = service.client.get(f"{path}?expires=1&signature={query['signature'][0]}")
    assert_error(expired_sig, 404, "NOT_FOUND")
    traversal = service.client.get(
        "/api/v1/files/..%2Fsecret?expires=9999999999&signature=" + "0" * 64
    )
    assert traversal.status_code == 404


def test_health_and_readiness(service: Service) -> None:
    assert service.client.get("/healthz").json() == {"status": "ok"}
    ready = service.client.get("/api/v1/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["database"] == "ok"
    assert body["migrations"] == "current"
    assert MODEL in body["models"]
    assert "random weights" in body["warning"]


def test_openapi_documents_models_queue_state_and_errors(queued_service: Service) -> None:
    doc = queued_service.client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    assert {"KlingV26Input", "MotionControlV26Input", "QueueState", "Error"} <= set(schemas)
    assert schemas["QueueState"]["enum"] == [
        "IN_QUEUE",
        "IN_PROGRESS",
        "COMPLETED",
        "FAILED",
        "CANCELED",
    ]
    kling = schemas["KlingV26Input"]["properties"]
    assert kling["aspect_ratio"]["enum"] == ["16:9", "9:16", "1:1"]
    # One concrete create path per model, each with that model's own body schema.
    for route, schema_name in (
        ("kling-ai/kling-v2.6", "KlingV26Input"),
        ("kling-ai/motion-control-v2.6", "MotionControlV26Input"),
    ):
        for path in (f"/api/v1/generation/{route}", f"/api/v1/generation/sse/{route}"):
            content = doc["paths"][path]["post"]["requestBody"]["content"]
            assert set(content) == {"application/json", "multipart/form-data"}
            for media in content.values():
                assert media["schema"] == {"$ref": f"#/components/schemas/{schema_name}"}
    assert not any("{route}" in path for path in doc["paths"])
