"""Each error class, raised from what a real reelserve server answers."""

from __future__ import annotations

import pytest

from reelserve.client import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    Client,
    ConflictError,
    InsufficientCreditsError,
    InvalidInputError,
    NotFoundError,
    ReelserveError,
    ServiceUnavailableError,
    UnsupportedModelError,
)
from tests.client.conftest import FAST, Account, account
from tests.fixtures import TOO_SMALL_PNG
from tests.live_service import LiveService


def test_a_wrong_key_is_an_authentication_error(queued: Account) -> None:
    with Client(base_url=queued.server.base_url, api_key="rs_wrong", backoff=FAST) as bad:
        with pytest.raises(AuthenticationError) as info:
            bad.credits()
        with pytest.raises(AuthenticationError):
            bad.generations.create(prompt="x")
        with pytest.raises(AuthenticationError):
            list(bad.generations.stream(prompt="x"))
    error = info.value
    assert isinstance(error, APIStatusError)
    assert isinstance(error, ReelserveError)
    assert (error.status, error.code) == (401, "UNAUTHORIZED")
    assert "Authorization" in error.message
    assert isinstance(error.body, dict)
    assert error.body["error"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "x", "duration": 7}, "duration"),
        ({"prompt": "x", "aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"prompt": "x", "end_image": "https://example.com/a.png"}, "end_image_url"),
    ],
)
def test_invalid_input_names_the_field(
    qclient: Client, options: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        qclient.generations.create(**options)  # type: ignore[arg-type]
    assert info.value.status == 400
    assert info.value.code == "VIDEO_GENERATION_INVALID_INPUT"
    assert info.value.field == field
    assert qclient.credits().total == 1000


def test_an_unusable_upload_names_its_field(qclient: Client) -> None:
    with pytest.raises(InvalidInputError) as info:
        qclient.generations.create(prompt="x", image=TOO_SMALL_PNG)
    assert info.value.field == "image_url"


def test_an_unknown_model_is_unsupported(qclient: Client) -> None:
    with pytest.raises(UnsupportedModelError) as info:
        qclient.generations.create("openai/sora", prompt="x")
    assert isinstance(info.value, InvalidInputError)
    assert info.value.status == 400
    assert info.value.code == "VIDEO_GENERATION_UNSUPPORTED_MODEL"
    assert info.value.field == "model"


def test_too_few_credits_is_402_and_stores_nothing(queued_server: LiveService) -> None:
    poor = account(queued_server, credits=19)
    with poor.client() as c:
        with pytest.raises(InsufficientCreditsError) as info:
            c.generations.create(prompt="x")
        assert c.generations.list().items == []
    assert info.value.status == 402
    assert info.value.code == "VIDEO_GENERATION_INSUFFICIENT_CREDITS"
    assert "20" in info.value.message


def test_unknown_and_foreign_ids_are_not_found(qclient: Client, queued_server: LiveService) -> None:
    with pytest.raises(NotFoundError) as info:
        qclient.generations.get("gen_unknown")
    assert (info.value.status, info.value.code) == (404, "NOT_FOUND")
    with account(queued_server).client() as other:
        foreign = other.generations.create(prompt="x")
    with pytest.raises(NotFoundError):
        qclient.generations.get(foreign.id)
    with pytest.raises(NotFoundError):
        qclient.generations.cancel(foreign.id)
    with pytest.raises(NotFoundError):
        list(qclient.generations.follow(foreign.id))


def test_an_idempotency_key_reused_with_another_body_is_a_conflict(qclient: Client) -> None:
    qclient.generations.create(prompt="x", idempotency_key="k-1")
    with pytest.raises(ConflictError) as info:
        qclient.generations.create(prompt="y", idempotency_key="k-1")
    assert info.value.status == 409
    assert "Idempotency-Key" in info.value.message
    assert info.value.record is None


def test_no_worker_for_the_model_is_503_after_the_retries(queued: Account) -> None:
    queued.server.store.remove_worker("wrk_remote")
    try:
        with queued.client(max_retries=1) as c, pytest.raises(ServiceUnavailableError) as info:
            c.generations.create(prompt="x")
    finally:
        queued.server.store.register_worker(
            "wrk_remote", "remote", ["kling-ai/kling-v2.6", "kling-ai/motion-control-v2.6"], {}
        )
    assert info.value.status == 503
    assert info.value.code == "VIDEO_GENERATION_PROVIDER_UNAVAILABLE"
    # The retried create used one idempotency key, so nothing was stored twice (or at all).
    with queued.client() as c:
        assert c.credits().total == 1000


def test_nothing_listening_is_a_connection_error(unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}/api/v1"
    with (
        Client(base_url=url, api_key="k", max_retries=1, backoff=FAST) as c,
        pytest.raises(APIConnectionError),
    ):
        c.credits()
