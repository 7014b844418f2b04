"""Faults a real server will not produce on demand, staged with ``httpx.MockTransport``:
connections dropped mid-stream, bursts of 503, 429 with ``Retry-After``, 500 on create,
refused connections and timeouts, a server without reelserve's event route, expired
links. Each test says why it needs the mock; everything else is tested against a real
server in the other modules."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelserve.client import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    Client,
    ConflictError,
    Generation,
    InternalServerError,
    InvalidInputError,
    RateLimitError,
    ServiceUnavailableError,
    Status,
)
from tests.client.conftest import FAST

BASE = "http://reelserve.test/api/v1"
Handler = Callable[[httpx.Request], httpx.Response]


def record(status: str, progress: int = 0, gen_id: str = "gen_1", **extra: Any) -> dict[str, Any]:
    return {"id": gen_id, "status": status, "input": {"prompt": "x"}, "progress": progress, **extra}


def completed(gen_id: str = "gen_1") -> dict[str, Any]:
    video = {"url": f"{BASE}/files/outputs/{gen_id}.mp4?sig=1", "file_name": f"{gen_id}.mp4"}
    data = {"type": "video", "videos": [video], "video": video}
    return record("COMPLETED", 100, gen_id, data=data)


def event(seq: int | None, body: dict[str, Any]) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}data: {json.dumps(body)}\n\n".encode()


class Dropping(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that sends ``chunks`` and then loses the connection."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.ReadError("connection reset by peer")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        raise httpx.ReadError("connection reset by peer")


def sse(*chunks: bytes, drop: bool = False) -> httpx.Response:
    headers = {"content-type": "text/event-stream"}
    if drop:
        return httpx.Response(200, headers=headers, stream=Dropping(*chunks))
    return httpx.Response(200, headers=headers, content=b"".join(chunks))


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    body = {"error": code, "code": code, "message": message}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """Answers requests in order and keeps them for the assertions."""

    def __init__(self, *answers: httpx.Response | Handler | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        request.read()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def client(self, **kw: Any) -> Client:
        kw.setdefault("backoff", FAST)
        http = httpx.Client(transport=httpx.MockTransport(self))
        return Client(base_url=BASE, api_key="rs_test", http_client=http, **kw)

    def async_client(self, **kw: Any) -> AsyncClient:
        kw.setdefault("backoff", FAST)
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return AsyncClient(base_url=BASE, api_key="rs_test", http_client=http, **kw)


def _dropped_then_resumed() -> Script:
    return Script(
        sse(
            b": keepalive\n\n",
            event(1, record("IN_QUEUE")),
            event(2, record("IN_PROGRESS", 10)),
            b'id: 3\ndata: {"id": "gen_1", "sta',  # cut in the middle of an event
            drop=True,
        ),
        # This server replays from the event named in Last-Event-ID, inclusive: the SDK
        # must not hand out event 2 twice.
        sse(
            event(2, record("IN_PROGRESS", 10)),
            b": keepalive\n\n",
            event(3, record("IN_PROGRESS", 50)),
            event(4, completed()),
        ),
    )


def _assert_resumed(script: Script, records: list[Any]) -> None:
    assert [(r.status, r.progress) for r in records] == [
        ("IN_QUEUE", 0),
        ("IN_PROGRESS", 10),
        ("IN_PROGRESS", 50),
        ("COMPLETED", 100),
    ]
    post, resume = script.requests
    assert post.method == "POST"
    assert post.url.path == "/api/v1/generation/sse/kling-ai/kling-v2.6"
    assert resume.method == "GET"
    assert resume.url.path == "/api/v1/generation/gen_1/events"
    assert resume.headers["Last-Event-ID"] == "2"
    assert resume.headers["Authorization"] == "Bearer rs_test"


def test_a_dropped_stream_resumes_with_last_event_id_and_no_duplicate() -> None:
    """Mock: a real server cannot be made to cut a connection in the middle of an event."""
    script = _dropped_then_resumed()
    with script.client() as client:
        records = list(client.generations.stream(prompt="x"))
    _assert_resumed(script, records)


@pytest.mark.anyio
async def test_async_dropped_stream_resumes_too(anyio_backend: str) -> None:
    """Mock: as in the sync test, the drop cannot be had from a real server."""
    script = _dropped_then_resumed()
    async with script.async_client() as client:
        records = [r async for r in client.generations.stream(prompt="x")]
    _assert_resumed(script, records)


def test_a_stream_dropped_before_its_first_event_posts_again_with_the_same_key() -> None:
    """Mock: the drop must come after the server took the create and before it answered."""
    script = Script(
        sse(b": keepalive\n\n", drop=True),
        sse(event(1, record("IN_QUEUE")), event(2, completed())),
    )
    with script.client() as client:
        records = list(client.generations.stream(prompt="x"))
    assert [r.status for r in records] == ["IN_QUEUE", "COMPLETED"]
    first, second = script.requests
    assert first.method == second.method == "POST"
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


def test_follow_without_event_ids_skips_repeated_states() -> None:
    """Mock: stands for a server that sends no ``id:`` lines (reelserve always does)."""
    script = Script(
        sse(event(None, record("IN_PROGRESS", 40)), drop=True),
        sse(event(None, record("IN_PROGRESS", 40)), event(None, completed())),
    )
    with script.client() as client:
        records = list(client.generations.follow("gen_1"))
    assert [(r.status, r.progress) for r in records] == [("IN_PROGRESS", 40), ("COMPLETED", 100)]
    assert "Last-Event-ID" not in script.requests[1].headers


def test_without_an_event_route_the_stream_falls_back_to_polling() -> None:
    """Mock: stands for a server of the platform that lacks reelserve's resumable
    ``/generation/{id}/events`` route (and ``progress``)."""
    bare = {"id": "gen_1", "status": "IN_PROGRESS", "input": {}}
    script = Script(
        sse(event(None, {"id": "gen_1", "status": "IN_QUEUE", "input": {}}), drop=True),
        error(404, "NOT_FOUND", "No such route or resource."),
        httpx.Response(200, json=bare),
        httpx.Response(200, json={**completed(), "progress": None}),
    )
    with script.client() as client:
        client.generations._t.sleep = lambda seconds: None  # type: ignore[method-assign]
        records = list(client.generations.stream(prompt="x"))
    assert [r.status for r in records] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert records[1].progress is None
    assert [r.url.path for r in script.requests[2:]] == ["/api/v1/generation/gen_1"] * 2


def test_a_stream_that_keeps_dropping_gives_up() -> None:
    """Mock: endless drops cannot be had from a real server."""
    drops = [sse(event(1, record("IN_QUEUE")), drop=True)] + [sse(drop=True) for _ in range(2)]
    script = Script(*drops)
    with script.client(max_retries=2) as client:
        seen: list[Any] = []
        with pytest.raises(APIConnectionError, match="kept dropping"):
            seen.extend(client.generations.stream(prompt="x"))
    assert [r.status for r in seen] == ["IN_QUEUE"]
    assert len(script.requests) == 3  # the first connection and max_retries reconnections


def test_a_burst_of_503_is_retried_for_get() -> None:
    """Mock: a real reelserve answers 503 only at create; a GET 503 needs a proxy."""
    busy = error(503, "VIDEO_GENERATION_PROVIDER_UNAVAILABLE", "busy")
    script = Script(busy, busy, httpx.Response(200, json=record("IN_QUEUE")))
    with script.client(max_retries=2) as client:
        assert client.generations.get("gen_1").status == Status.IN_QUEUE
    assert len(script.requests) == 3

    script = Script(busy, busy, busy)
    with script.client(max_retries=2) as client, pytest.raises(ServiceUnavailableError):
        client.generations.get("gen_1")
    assert len(script.requests) == 3


def test_cancel_is_retried_and_a_409_is_not() -> None:
    """Mock: the 502 from a proxy in front of the server."""
    script = Script(
        httpx.Response(502, text="Bad Gateway"),
        httpx.Response(
            409,
            json={
                "error": "CONFLICT",
                "code": "CONFLICT",
                "message": "generation is already COMPLETED",
                "record": completed(),
            },
        ),
    )
    with script.client() as client, pytest.raises(ConflictError) as info:
        client.generations.cancel("gen_1")
    assert [r.method for r in script.requests] == ["POST", "POST"]
    assert info.value.record is not None
    assert info.value.record.video is not None


def test_429_waits_as_long_as_retry_after_says() -> None:
    """Mock: reelserve's rate limits need many requests to trip; the header is the point."""
    limited = error(429, "VIDEO_GENERATION_RATE_LIMITED", "slow down", **{"Retry-After": "1"})
    script = Script(limited, httpx.Response(200, json={"total": 5}))
    with script.client() as client:  # backoff of milliseconds: only Retry-After can wait 1 s
        started = time.monotonic()
        assert client.credits().total == 5
        assert time.monotonic() - started >= 0.95
    assert len(script.requests) == 2

    script = Script(limited)
    with script.client(max_retries=0) as client, pytest.raises(RateLimitError) as info:
        client.credits()
    assert info.value.retry_after == 1.0
    assert info.value.status == 429


def test_create_is_retried_on_500_with_the_same_generated_idempotency_key() -> None:
    """Mock: a real server's 500 is a bug, not something to stage."""
    script = Script(
        error(500, "INTERNAL_ERROR", "Internal error; quote request id 1."),
        httpx.Response(200, json=record("IN_QUEUE")),
    )
    with script.client() as client:
        assert client.generations.create(prompt="x").id == "gen_1"
    first, second = script.requests
    key = first.headers["Idempotency-Key"]
    assert second.headers["Idempotency-Key"] == key
    assert uuid.UUID(key).version == 4
    assert json.loads(first.content) == json.loads(second.content) == {"prompt": "x"}


def test_a_multipart_create_resends_the_whole_file(tmp_path: Path) -> None:
    """Mock: a retry after a 500 resends the body; only a mock sees both bodies."""
    image = tmp_path / "still.png"
    image.write_bytes(b"\x89PNG fake bytes")
    script = Script(
        error(500, "INTERNAL_ERROR", "oops"), httpx.Response(200, json=record("IN_QUEUE"))
    )
    with script.client() as client:
        client.generations.create(prompt="x", image=image, duration=10, generate_audio=False)
    first, second = script.requests

    def unbounded(request: httpx.Request) -> bytes:
        boundary = request.headers["content-type"].partition("boundary=")[2]
        return request.content.replace(boundary.encode(), b"BOUNDARY")

    assert unbounded(first) == unbounded(second)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.headers["content-type"].startswith("multipart/form-data")
    body = first.content
    assert b'name="image_url"; filename="still.png"' in body
    assert b"\x89PNG fake bytes" in body
    assert b'name="generate_audio"\r\n\r\nfalse' in body
    assert b'name="duration"\r\n\r\n10' in body


def test_client_errors_are_not_retried() -> None:
    """Mock: counts the requests a real server would have answered the same way."""
    script = Script(error(400, "VIDEO_GENERATION_INVALID_INPUT", "prompt: is required"))
    with script.client(max_retries=5) as client, pytest.raises(InvalidInputError):
        client.generations.create()
    assert len(script.requests) == 1


def test_connection_errors_and_timeouts_are_retried_then_raised() -> None:
    """Mock: refused connections and timeouts at chosen moments."""
    script = Script(httpx.ConnectError("refused"), httpx.Response(200, json={"total": 1}))
    with script.client() as client:
        assert client.credits().total == 1
    script = Script(*(httpx.ReadTimeout("slow") for _ in range(3)))
    with script.client(max_retries=2) as client, pytest.raises(APITimeoutError):
        client.credits()
    assert len(script.requests) == 3
    script = Script(httpx.ConnectError("refused"))
    with script.client(max_retries=0) as client, pytest.raises(APIConnectionError) as info:
        client.credits()
    assert not isinstance(info.value, APITimeoutError)


def test_download_never_sends_the_key_and_refreshes_an_expired_link(tmp_path: Path) -> None:
    """Mock: the real server ignores a stray Authorization header, so only a mock can see
    it was not sent; and a link expiring between two calls needs a clock we do not have."""
    fresh = completed()
    fresh["data"]["video"]["url"] = "https://cdn.example/v.mp4?sig=2"
    script = Script(
        error(404, "NOT_FOUND", "No such route or resource."),
        httpx.Response(200, json=fresh),
        httpx.Response(200, content=b"\0\0\0\x18ftypisom" + b"\0" * 100),
    )
    with script.client() as client:
        path = client.generations.download(Generation.model_validate(completed()), tmp_path)
    assert path == tmp_path / "gen_1.mp4"
    assert path.read_bytes()[4:8] == b"ftyp"
    expired, refresh, download = script.requests
    assert "Authorization" not in expired.headers
    assert refresh.headers["Authorization"] == "Bearer rs_test"
    assert str(download.url) == "https://cdn.example/v.mp4?sig=2"
    assert "Authorization" not in download.headers


def test_a_5xx_without_the_error_body_still_maps_to_a_class() -> None:
    """Mock: a proxy's HTML error page, which reelserve itself never sends."""
    script = Script(*(httpx.Response(504, text="<html>Gateway Timeout</html>") for _ in range(3)))
    with script.client() as client, pytest.raises(InternalServerError) as info:
        client.generations.get("gen_1")
    assert info.value.status == 504
    assert info.value.code is None
    assert "Gateway Timeout" in info.value.message
