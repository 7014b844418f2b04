"""The internal worker routes: worker tokens only, fenced by attempt, not in the schema."""

from __future__ import annotations

from typing import Any

import pytest

from reelserve.services.worker_tokens import create_worker_token
from reelserve.store import SqlWorkerTokens
from tests.api.conftest import Service, assert_error

INTERNAL = "/internal/v1"


@pytest.fixture
def svc(queued_service: Service) -> Service:
    return queued_service


def _token(svc: Service) -> str:
    return create_worker_token(SqlWorkerTokens(svc.store.engine), "test").token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claim(svc: Service, token: str, worker_id: str = "wrk_a") -> dict[str, Any]:
    response = svc.client.post(
        f"{INTERNAL}/claim",
        json={"worker_id": worker_id, "models": ["kling-ai/kling-v2.6"]},
        headers=_bearer(token),
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["generation"])


def test_internal_routes_refuse_api_keys_revoked_tokens_and_nothing_alike(svc: Service) -> None:
    tokens = SqlWorkerTokens(svc.store.engine)
    revoked = create_worker_token(tokens, "old")
    tokens.revoke_worker_token(revoked.prefix)
    body = {"worker_id": "wrk_a", "models": ["kling-ai/kling-v2.6"]}
    answers = []
    for headers in (svc.auth, _bearer(revoked.token), _bearer("rsw_made_up"), {}):
        response = svc.client.post(f"{INTERNAL}/claim", json=body, headers=headers)
        assert_error(response, 401, "UNAUTHORIZED", "Authorization")
        assert response.headers["www-authenticate"] == "Bearer"
        answers.append(response.json())
    assert all(answer == answers[0] for answer in answers)


def test_public_routes_refuse_worker_tokens_like_any_unknown_key(svc: Service) -> None:
    token = _token(svc)
    as_worker = svc.client.get("/api/v1/credits", headers=_bearer(token))
    as_stranger = svc.client.get("/api/v1/credits", headers=_bearer("rs_not_a_key"))
    assert_error(as_worker, 401, "UNAUTHORIZED")
    assert as_worker.json() == as_stranger.json()
    create = svc.client.post(
        "/api/v1/generation/kling-ai/kling-v2.6", json={"prompt": "x"}, headers=_bearer(token)
    )
    assert_error(create, 401, "UNAUTHORIZED")
    assert svc.store.list_for_workspace(svc.workspace_id, None, 10) == []


def test_internal_routes_are_not_in_the_public_schema(svc: Service) -> None:
    paths = svc.client.get("/api/v1/openapi.json").json()["paths"]
    assert paths  # the public routes are there
    assert not [path for path in paths if "internal" in path]


def test_claim_answers_204_on_an_empty_queue_and_the_task_when_there_is_one(
    svc: Service,
) -> None:
    token = _token(svc)
    body = {"worker_id": "wrk_a", "models": ["kling-ai/kling-v2.6"], "wait_s": 0}
    empty = svc.client.post(f"{INTERNAL}/claim", json=body, headers=_bearer(token))
    assert empty.status_code == 204
    created = svc.create({"prompt": "x"}).json()
    claimed = svc.client.post(f"{INTERNAL}/claim", json=body, headers=_bearer(token))
    assert claimed.status_code == 200
    assert claimed.json()["generation"]["id"] == created["id"]
    assert claimed.json()["generation"]["attempt"] == 1
    assert claimed.json()["lease_s"] == svc.settings.lease_s
    assert svc.get(created["id"])["status"] == "IN_PROGRESS"


@pytest.mark.parametrize(
    ("verb", "extra"),
    [
        ("heartbeat", {"progress": 10}),
        ("complete", {"data": {"videos": [{"key": "outputs/WS/GEN-1.mp4"}]}}),
        ("fail", {"code": "VIDEO_GENERATION_FAILED", "message": "boom"}),
        ("canceled", {}),
    ],
)
@pytest.mark.parametrize(("worker_id", "attempt"), [("wrk_other", 1), ("wrk_a", 2)])
def test_only_the_holder_of_the_attempt_may_act(
    svc: Service, verb: str, extra: dict[str, Any], worker_id: str, attempt: int
) -> None:
    token = _token(svc)
    created = svc.create({"prompt": "x"}).json()
    gen = _claim(svc, token)
    body = {"worker_id": worker_id, "attempt": attempt, **extra}
    if "data" in extra:
        key = f"outputs/{gen['workspace_id']}/{gen['id']}-{attempt}.mp4"
        body["data"] = {"videos": [{"key": key}]}
    response = svc.client.post(
        f"{INTERNAL}/tasks/{gen['id']}/{verb}", json=body, headers=_bearer(token)
    )
    assert_error(response, 409, "CONFLICT", "attempt: worker")
    record = svc.get(created["id"])
    assert record["status"] == "IN_PROGRESS"
    assert record["progress"] == 0
    assert svc.credits()["total"] == 1000 - created["usage"]["total"]  # still reserved


def test_complete_names_outputs_of_another_task_as_invalid(svc: Service) -> None:
    token = _token(svc)
    svc.create({"prompt": "x"})
    gen = _claim(svc, token)
    stolen = f"uploads/{gen['workspace_id']}/someone-else.png"
    response = svc.client.post(
        f"{INTERNAL}/tasks/{gen['id']}/complete",
        json={"worker_id": "wrk_a", "attempt": 1, "data": {"videos": [{"key": stolen}]}},
        headers=_bearer(token),
    )
    assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", "data.videos[0].key")


def test_heartbeat_of_the_holder_reports_a_cancel(svc: Service) -> None:
    token = _token(svc)
    created = svc.create({"prompt": "x"}).json()
    gen = _claim(svc, token)
    beat = {"worker_id": "wrk_a", "attempt": 1, "progress": 40}
    url = f"{INTERNAL}/tasks/{gen['id']}/heartbeat"
    first = svc.client.post(url, json=beat, headers=_bearer(token))
    assert first.status_code == 200
    assert first.json()["cancel_requested"] is False
    assert svc.get(created["id"])["progress"] == 40
    svc.client.post(f"/api/v1/generation/{created['id']}/cancel", headers=svc.auth)
    assert svc.client.post(url, json=beat, headers=_bearer(token)).json()["cancel_requested"]


def test_files_of_a_task_are_reachable_only_by_its_holder(svc: Service) -> None:
    token = _token(svc)
    svc.create({"prompt": "x"})
    gen = _claim(svc, token)
    key = f"outputs/{gen['workspace_id']}/{gen['id']}-1.mp4"
    url = f"{INTERNAL}/tasks/{gen['id']}/files/{key}"
    stranger = svc.client.put(
        url, params={"worker_id": "wrk_b", "attempt": 1}, content=b"x", headers=_bearer(token)
    )
    assert_error(stranger, 409, "CONFLICT", "attempt:")
    elsewhere = svc.client.put(
        f"{INTERNAL}/tasks/{gen['id']}/files/uploads/{gen['workspace_id']}/x.png",
        params={"worker_id": "wrk_a", "attempt": 1},
        content=b"x",
        headers=_bearer(token),
    )
    assert_error(elsewhere, 400, "VIDEO_GENERATION_INVALID_INPUT", "key:")
    target = svc.client.post(
        f"{INTERNAL}/tasks/{gen['id']}/upload-url",
        json={"worker_id": "wrk_a", "attempt": 1, "key": key},
        headers=_bearer(token),
    )
    assert target.json() == {"url": None}  # a local folder: upload through the API
    done = svc.client.put(
        url, params={"worker_id": "wrk_a", "attempt": 1}, content=b"bytes", headers=_bearer(token)
    )
    assert done.status_code == 204
    path = svc.settings.blobs_dir / key
    assert path.read_bytes() == b"bytes"
    not_an_input = svc.client.get(
        url, params={"worker_id": "wrk_a", "attempt": 1}, headers=_bearer(token)
    )
    assert_error(not_an_input, 400, "VIDEO_GENERATION_INVALID_INPUT", "key:")


def test_an_output_is_deleted_unless_the_completed_record_shows_it(svc: Service) -> None:
    token = _token(svc)
    svc.create({"prompt": "x"})
    gen = _claim(svc, token)
    key = f"outputs/{gen['workspace_id']}/{gen['id']}-1.mp4"
    url = f"{INTERNAL}/tasks/{gen['id']}/files/{key}"
    fence = {"worker_id": "wrk_a", "attempt": 1}
    path = svc.settings.blobs_dir / key

    put = svc.client.put(url, params=fence, content=b"draft", headers=_bearer(token))
    assert put.status_code == 204
    assert path.read_bytes() == b"draft"
    dropped = svc.client.delete(url, params=fence, headers=_bearer(token))
    assert dropped.status_code == 204
    assert not path.exists()

    svc.client.put(url, params=fence, content=b"video", headers=_bearer(token))
    completed = svc.client.post(
        f"{INTERNAL}/tasks/{gen['id']}/complete",
        json={**fence, "data": {"type": "video", "videos": [{"key": key}]}},
        headers=_bearer(token),
    )
    assert completed.status_code == 200, completed.text
    assert completed.json()["generation"]["status"] == "COMPLETED"
    refused = svc.client.delete(url, params=fence, headers=_bearer(token))
    assert_error(refused, 409, "CONFLICT", "key:")
    assert path.read_bytes() == b"video"
