"""Webhooks end to end: the real app, store, worker (FakeEngine) and deliverer thread,
posting to a real receiver on loopback that checks every signature."""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from reelserve.store.webhook_outbox import SqlWebhookOutbox
from tests.api.conftest import Service, assert_error
from tests.media_server import serve_files
from tests.webhook_receiver import Received, signature_valid, webhook_receiver

# Receivers here listen on loopback, which only the test-only setting allows.
HOOKS: dict[str, Any] = {
    "allow_private_urls": True,
    "webhook_poll_s": 0.05,
    "webhook_retry_s": 0.05,
    "webhook_timeout_s": 0.5,
}


def _secret(svc: Service) -> str:
    return SqlWebhookOutbox(svc.store.engine).webhook_secret(svc.workspace_id)


def _without_links(record: dict[str, Any]) -> dict[str, Any]:
    """The record less its signed file links, which are signed afresh on every read."""
    shown = dict(record)
    if shown.get("data"):
        data = dict(shown["data"])
        data["videos"] = [
            {k: v for k, v in video.items() if k not in ("url", "expires_at")}
            for video in data["videos"]
        ]
        data["video"] = data["videos"][0]
        shown["data"] = data
    return shown


def _settled(receiver_count: int, received: list[Received]) -> None:
    """No further delivery turns up once the expected ones are in."""
    time.sleep(0.4)
    assert len(received) == receiver_count


def test_a_completed_task_delivers_one_signed_post_with_its_record(
    make_service: Any,
) -> None:
    svc: Service = make_service(**HOOKS)
    with webhook_receiver() as receiver:
        created = svc.create({"prompt": "a cat", "webhook_url": receiver.url}).json()
        assert created["input"]["webhook_url"] == receiver.url
        done = svc.wait(created["id"])
        [got] = receiver.wait_for(1)
        _settled(1, receiver.received)
    assert done["status"] == "COMPLETED"
    assert signature_valid(_secret(svc), got.headers, got.body)
    assert got.id.startswith("msg_")
    assert _without_links(got.record) == _without_links(svc.get(created["id"]))
    # The file link in the webhook is a fresh, working signed URL.
    link = urlsplit(got.record["data"]["video"]["url"])
    download = svc.client.get(f"{link.path}?{link.query}")
    assert download.status_code == 200
    assert download.content[4:8] == b"ftyp"


def test_a_failed_task_delivers_too(make_service: Any) -> None:
    svc: Service = make_service(**HOOKS)
    with webhook_receiver() as receiver, serve_files({}) as files:
        failed = svc.create(
            {"prompt": "x", "image_url": f"{files}/missing.png", "webhook_url": receiver.url}
        ).json()
        assert svc.wait(failed["id"])["status"] == "FAILED"
        [first] = receiver.wait_for(1)
    assert first.record["id"] == failed["id"]
    assert first.record["status"] == "FAILED"
    assert first.record["code"] == "VIDEO_GENERATION_INVALID_INPUT"
    assert signature_valid(_secret(svc), first.headers, first.body)


def test_a_canceled_task_delivers_too(make_service: Any) -> None:
    queued: Service = make_service(worker=False, **HOOKS)
    with webhook_receiver() as receiver:
        task = queued.create({"prompt": "x", "webhook_url": receiver.url}).json()
        canceled = queued.client.post(
            f"/api/v1/generation/{task['id']}/cancel", headers=queued.auth
        )
        assert canceled.json()["status"] == "CANCELED"
        [got] = receiver.wait_for(1)
        _settled(1, receiver.received)
    assert signature_valid(_secret(queued), got.headers, got.body)
    assert (got.record["id"], got.record["status"]) == (task["id"], "CANCELED")
    assert got.record["usage"] == {"total": 0, "subscription": 0, "permanent": 0}


def test_a_receiver_answering_500_gets_a_retry_with_the_same_id(make_service: Any) -> None:
    svc: Service = make_service(worker=False, **HOOKS)
    with webhook_receiver(statuses=[500]) as receiver:
        task = svc.create({"prompt": "x", "webhook_url": receiver.url}).json()
        svc.client.post(f"/api/v1/generation/{task['id']}/cancel", headers=svc.auth)
        first, retry = receiver.wait_for(2)
        _settled(2, receiver.received)
    assert first.id == retry.id
    secret = _secret(svc)
    assert signature_valid(secret, first.headers, first.body)
    assert signature_valid(secret, retry.headers, retry.body)
    [state] = SqlWebhookOutbox(svc.store.engine).deliveries_for(task["id"])
    assert (state.status, state.attempts, state.last_status_code) == ("delivered", 2, 200)


def test_a_receiver_that_never_answers_does_not_delay_the_task(make_service: Any) -> None:
    svc: Service = make_service(**{**HOOKS, "webhook_timeout_s": 3.0})
    with webhook_receiver(hang_s=5.0) as receiver:
        first = svc.create({"prompt": "x", "webhook_url": receiver.url}).json()
        assert svc.wait(first["id"], timeout=20)["status"] == "COMPLETED"
        receiver.wait_for(1)  # its delivery is now stuck in the receiver
        # Tasks keep finishing, and their records read, while the delivery hangs.
        second = svc.create({"prompt": "y"}).json()
        assert svc.wait(second["id"], timeout=20)["status"] == "COMPLETED"
        assert svc.get(first["id"])["status"] == "COMPLETED"
        [state] = SqlWebhookOutbox(svc.store.engine).deliveries_for(first["id"])
        assert state.status == "pending"  # sending, or waiting to retry after a timeout


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1:{port}/hook", "private, loopback"),
        ("http://localhost:{port}/hook", "webhook_url"),
        ("http://[::1]:{port}/hook", "private, loopback"),
        ("http://10.0.0.7/hook", "private, loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://metadata.google.internal/", "webhook_url"),
        ("ftp://hooks.example.com/x", "http or https"),
        ("http://user:pw@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com/" + "a" * 2100, "at most 2048"),
        ("not a url", "webhook_url"),
    ],
)
def test_unsafe_webhook_urls_are_refused_at_create(make_service: Any, url: str, rule: str) -> None:
    svc: Service = make_service(worker=False)  # private URLs not allowed
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    try:
        target = url.replace("{port}", str(listener.getsockname()[1]))
        response = svc.create({"prompt": "x", "webhook_url": target})
        assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", "webhook_url")
        assert rule in response.json()["message"]
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()
    assert svc.store.list_for_workspace(svc.workspace_id, None, 10) == []
