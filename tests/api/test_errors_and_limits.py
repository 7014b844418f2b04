"""Bad input gets a clear error naming the field, and stores and charges nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import MODEL, Service, assert_error
from tests.fixtures import CLIP_TOO_SHORT, LANDSCAPE_PNG, NOT_AN_IMAGE, TOO_SMALL_PNG


def _nothing_stored(svc: Service) -> None:
    assert svc.store.list_for_workspace(svc.workspace_id, None, 10) == []
    assert svc.credits()["total"] == 1000


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({}, "prompt: is required"),
        ({"prompt": ""}, "prompt: must be at least 1"),
        ({"prompt": "x" * 2501}, "prompt: must be at most 2500"),
        ({"prompt": "x", "duration": 7}, "duration: must be 5 or 10"),
        ({"prompt": "x", "duration": "abc"}, "duration: must be an integer"),
        ({"prompt": "x", "aspect_ratio": "4:3"}, "aspect_ratio: must be one of"),
        ({"prompt": "x", "quality": "ultra"}, "quality: must be one of"),
        ({"prompt": "x", "generate_audio": "maybe"}, "generate_audio: must be true or false"),
        ({"prompt": "x", "seed": -1}, "seed:"),
        ({"prompt": "x", "negative_prompt": "n" * 2501}, "negative_prompt: must be at most"),
        (
            {"prompt": "x", "end_image_url": "https://example.com/a.png"},
            "end_image_url: needs image_url",
        ),
        ({"prompt": "x", "feature": "motion-control"}, "video_url: is required"),
        ({"video_url": "https://example.com/a.mp4"}, "image_url: a character image"),
        ({"prompt": "x", "image_url": "ftp://example.com/a.png"}, "image_url"),
        ({"prompt": "x", "image_url": "http://127.0.0.1/a.png"}, "image_url"),
        ({"prompt": "x", "image_url": "http://169.254.169.254/latest/meta-data"}, "image_url"),
        ({"prompt": "x", "image_url": "http://[::1]/a.png"}, "image_url"),
        ({"prompt": "x", "image_url": "http://user:pw@example.com/a.png"}, "image_url"),
        ({"prompt": "x", "webhook_url": "http://10.0.0.1/hook"}, "webhook_url"),
    ],
)
def test_invalid_bodies_name_the_field(
    queued_service: Service, body: dict[str, Any], mentions: str
) -> None:
    response = queued_service.create(body)
    assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", mentions)
    _nothing_stored(queued_service)


@pytest.mark.parametrize(
    ("raw", "mentions"),
    [
        (b"{not json", "body: malformed JSON"),
        (b"[1, 2]", "body: must be a JSON object"),
        (b"", "body: a JSON object is required"),
    ],
)
def test_malformed_json(queued_service: Service, raw: bytes, mentions: str) -> None:
    response = queued_service.client.post(
        f"/api/v1/generation/{MODEL}",
        content=raw,
        headers={**queued_service.auth, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", mentions)
    _nothing_stored(queued_service)


@pytest.mark.parametrize("model", ["kling-ai/v3/video", "openai/sora", "kling-ai"])
def test_unknown_model(queued_service: Service, model: str) -> None:
    response = queued_service.create({"prompt": "x"}, model=model)
    assert_error(response, 400, "VIDEO_GENERATION_UNSUPPORTED_MODEL", "model")


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer rs_wrong"}, {"Authorization": "Basic abc"}]
)
def test_missing_or_wrong_key(queued_service: Service, headers: dict[str, str]) -> None:
    client = queued_service.client
    for response in (
        client.post(f"/api/v1/generation/{MODEL}", json={"prompt": "x"}, headers=headers),
        client.get("/api/v1/generation/gen_x", headers=headers),
        client.get("/api/v1/generations/running", headers=headers),
        client.get("/api/v1/generations", headers=headers),
        client.get("/api/v1/credits", headers=headers),
        client.post("/api/v1/generation/gen_x/cancel", headers=headers),
    ):
        assert_error(response, 401, "UNAUTHORIZED", "Authorization")


def test_revoked_key_fails_like_an_unknown_one(queued_service: Service) -> None:
    prefix = queued_service.key[:12]
    assert queued_service.store.revoke_key(prefix)
    response = queued_service.client.get("/api/v1/credits", headers=queued_service.auth)
    assert_error(response, 401, "UNAUTHORIZED", "not valid")


def test_insufficient_credits_is_402_and_stores_nothing(make_service: Any) -> None:
    svc = make_service(worker=False, credits=19)
    assert_error(
        svc.create({"prompt": "x"}),
        402,
        "VIDEO_GENERATION_INSUFFICIENT_CREDITS",
        "costs 20 credits",
    )
    assert svc.store.list_for_workspace(svc.workspace_id, None, 10) == []
    assert svc.credits()["total"] == 19


def test_no_worker_for_the_model_is_503(make_service: Any) -> None:
    svc = make_service(worker=False, register_remote_worker=False)
    assert_error(
        svc.create({"prompt": "x"}), 503, "VIDEO_GENERATION_PROVIDER_UNAVAILABLE", "no worker"
    )
    assert svc.credits()["total"] == 1000


def test_upload_over_the_limit_is_413(queued_service: Service) -> None:
    big = b"\0" * (10_000_000 + 1)
    response = queued_service.client.post(
        f"/api/v1/generation/{MODEL}",
        headers=queued_service.auth,
        data={"prompt": "x"},
        files={"image_url": ("big.png", big, "image/png")},
    )
    assert_error(response, 413, "VIDEO_GENERATION_INVALID_INPUT", "image_url")
    _nothing_stored(queued_service)
    assert not list((queued_service.settings.blobs_dir).rglob("*.png"))


@pytest.mark.parametrize(
    ("field", "path", "mentions"),
    [
        ("image_url", NOT_AN_IMAGE, "image_url"),
        ("image_url", TOO_SMALL_PNG, "300"),
        ("image_url", CLIP_TOO_SHORT, "image_url"),  # a video posing as an image
    ],
)
def test_uploads_are_checked_by_decoding(
    queued_service: Service, field: str, path: Any, mentions: str
) -> None:
    with path.open("rb") as handle:
        response = queued_service.client.post(
            f"/api/v1/generation/{MODEL}",
            headers=queued_service.auth,
            data={"prompt": "x"},
            files={field: ("picture.png", handle, "image/png")},
        )
    assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", mentions)
    _nothing_stored(queued_service)
    assert not list(queued_service.settings.blobs_dir.rglob("uploads/*/*"))


def test_too_short_reference_video(queued_service: Service) -> None:
    with LANDSCAPE_PNG.open("rb") as image, CLIP_TOO_SHORT.open("rb") as video:
        response = queued_service.client.post(
            f"/api/v1/generation/{MODEL}",
            headers=queued_service.auth,
            files={"image_url": ("c.png", image), "video_url": ("r.mp4", video)},
        )
    assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", "video_url")
    _nothing_stored(queued_service)


def test_file_parts_only_for_media_fields(queued_service: Service) -> None:
    response = queued_service.client.post(
        f"/api/v1/generation/{MODEL}",
        headers=queued_service.auth,
        data={"prompt": "x"},
        files={"prompt_file": ("p.txt", b"hello", "text/plain")},
    )
    assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", "prompt_file")


def test_url_and_file_for_the_same_field(queued_service: Service) -> None:
    with LANDSCAPE_PNG.open("rb") as image:
        response = queued_service.client.post(
            f"/api/v1/generation/{MODEL}",
            headers=queued_service.auth,
            data={"prompt": "x", "image_url": "https://example.com/a.png"},
            files={"image_url": ("c.png", image)},
        )
    assert response.status_code == 400
    _nothing_stored(queued_service)


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("workspace=someone-else", "workspace"),
    ],
)
def test_running_list_query_rules(queued_service: Service, query: str, mentions: str) -> None:
    response = queued_service.client.get(
        f"/api/v1/generations/running?{query}", headers=queued_service.auth
    )
    assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", mentions)


def test_history_status_filter_rule(queued_service: Service) -> None:
    response = queued_service.client.get(
        "/api/v1/generations?status=DONE", headers=queued_service.auth
    )
    assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", "status: must be one of")


def test_unknown_route_and_method_use_the_error_shape(queued_service: Service) -> None:
    assert_error(queued_service.client.get("/api/v1/nope"), 404, "NOT_FOUND")
    response = queued_service.client.delete("/api/v1/credits", headers=queued_service.auth)
    assert response.status_code == 405
    assert set(response.json()) == {"error", "code", "message"}


def test_per_key_create_rate_is_429_with_retry_after(make_service: Any) -> None:
    svc = make_service(worker=False, creates_per_minute=2)
    assert svc.create({"prompt": "a"}).status_code == 200
    assert svc.create({"prompt": "b"}).status_code == 200
    response = svc.create({"prompt": "c"})
    assert_error(response, 429, "VIDEO_GENERATION_RATE_LIMITED", "2 generations a minute")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert svc.credits()["total"] == 960  # the refused create held nothing


def test_per_key_active_cap_is_429_until_a_task_ends(make_service: Any) -> None:
    svc = make_service(worker=False, max_active_per_key=1)
    first = svc.create({"prompt": "a"}).json()
    response = svc.create({"prompt": "b"})
    assert_error(response, 429, "VIDEO_GENERATION_RATE_LIMITED", "at most 1")
    assert response.headers["Retry-After"] == "5"
    svc.client.post(f"/api/v1/generation/{first['id']}/cancel", headers=svc.auth)
    assert svc.create({"prompt": "b"}).status_code == 200
