"""The SDK's pure parts: configuration, SSE decoding, error parsing, tolerant models,
backoff and request building. No server, no transport."""

from __future__ import annotations

import email.utils
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import reelserve.client as sdk
from reelserve.client import (
    DEFAULT_BASE_URL,
    Backoff,
    Client,
    Generation,
    InvalidInputError,
    ReelserveError,
)
from reelserve.client._base import create_spec, make_config
from reelserve.client._errors import error_from_response, parse_retry_after
from reelserve.client._sse import EventCursor, ServerSentEvent, SSEDecoder


def test_the_package_imports_nothing_else_of_reelserve() -> None:
    code = (
        "import sys, reelserve.client; "
        "print(sorted(m for m in sys.modules if m.startswith('reelserve.') "
        "and not m.startswith('reelserve.client')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_all_names_exist() -> None:
    assert sorted(sdk.__all__) == sorted(set(sdk.__all__))
    for name in sdk.__all__:
        assert hasattr(sdk, name), name


def test_base_url_and_key_come_from_arguments_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REELSERVE_BASE_URL", raising=False)
    monkeypatch.setenv("REELSERVE_API_KEY", "rs_env")
    with Client() as client:
        assert client.base_url == DEFAULT_BASE_URL == "http://127.0.0.1:8000/api/v1"
        assert client.max_retries == 2
    monkeypatch.setenv("REELSERVE_BASE_URL", "https://gen.example/api/v1/")
    with Client() as client:
        assert client.base_url == "https://gen.example/api/v1"
    with Client(base_url="http://other:9/api/v1", api_key="rs_arg") as client:
        assert client.base_url == "http://other:9/api/v1"
    config = make_config(None, None, 5.0, 0, None)
    assert config.api_key == "rs_env"
    assert config.timeout == httpx.Timeout(5.0)
    monkeypatch.delenv("REELSERVE_API_KEY")
    with pytest.raises(ReelserveError, match="REELSERVE_API_KEY"):
        Client()


def test_a_passed_http_client_is_left_open() -> None:
    http = httpx.Client()
    with Client(api_key="k", http_client=http):
        pass
    assert not http.is_closed
    http.close()


def test_sse_decoder_follows_the_rules() -> None:
    decoder = SSEDecoder()
    lines = [
        ": keepalive",
        "",
        "id: 7",
        "event: progress",
        "retry: 3000",
        "data: {",
        'data:"a": 1}',
        "",
        "data: unfinished",
    ]
    events = [e for e in map(decoder.feed, lines) if e is not None]
    assert events == [ServerSentEvent(data='{\n"a": 1}', id="7", event="progress", retry=3000)]


def test_event_cursor_skips_replays_and_other_tasks() -> None:
    cursor = EventCursor()
    queued = '{"id": "gen_1", "status": "IN_QUEUE"}'
    done = '{"id": "gen_1", "status": "COMPLETED"}'
    first = cursor.accept(ServerSentEvent(queued, id="1"))
    assert first is not None
    assert cursor.resume_headers() == {"Last-Event-ID": "1"}
    assert cursor.accept(ServerSentEvent(queued, id="1")) is None
    assert cursor.accept(ServerSentEvent('{"id": "gen_2", "status": "X"}', id="2")) is None
    assert cursor.accept(ServerSentEvent("[DONE]", id="3")) is None
    assert not cursor.finished
    assert cursor.accept(ServerSentEvent(done, id="4")) is not None
    assert cursor.finished


def test_retry_after_in_every_form() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "3"}) == 0.25
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = parse_retry_after({"Retry-After": later})
    assert seconds is not None
    assert 25 < seconds <= 30


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("prompt: is required", "prompt"),
        ("Idempotency-Key: must be 1..255 characters", "Idempotency-Key"),
        ("input.image_url: bad", "input.image_url"),
        ("Something went wrong", None),
        ("see https://x.example: nope", None),
    ],
)
def test_invalid_input_field_comes_from_the_message(message: str, field: str | None) -> None:
    body = {"error": "E", "code": "E", "message": message}
    error = error_from_response(httpx.Response(400, json=body))
    assert isinstance(error, InvalidInputError)
    assert error.field == field


def test_records_tolerate_unknown_and_missing_fields() -> None:
    record = Generation.model_validate(
        {
            "id": "gen_x",
            "status": "SOMETHING_NEW",
            "flavour": "extra",
            "created_at": "not a date",
            "progress": "n/a",
            "data": {"videos": [{"url": "https://cdn/v.mp4", "bitrate": 9}]},
        }
    )
    assert record.model_extra == {"flavour": "extra"}
    assert record.created_at is None
    assert record.progress is None
    assert record.usage is None
    assert not record.done
    assert record.video is not None
    assert record.video.url == "https://cdn/v.mp4"
    assert record.video.model_extra == {"bitrate": 9}


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    backoff = Backoff(initial=1.0, maximum=4.0, jitter=0.25)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        delay = backoff.delay(attempt)
        assert 0.75 * ceiling <= delay <= ceiling
    assert backoff.delay(0, retry_after=7.0) == 7.0
    assert backoff.delay(0, retry_after=600.0) <= 1.0  # beyond max_retry_after: ignored


def test_create_arguments_are_checked(tmp_path: Path) -> None:
    config = make_config("http://h/api/v1", "k", None, 2, None)

    def spec(**kw: object) -> object:
        media = {name: kw.pop(name, None) for name in ("image", "end_image", "video")}
        return create_spec(
            config,
            "kling-ai/kling-v2.6",
            sse=False,
            prompt="x",
            media=media,  # type: ignore[arg-type]
            idempotency_key=None,
            options=kw,
        )

    with pytest.raises(TypeError, match="not both"):
        spec(image="https://a/b.png", image_url="https://a/c.png")
    with pytest.raises(TypeError, match="expected"):
        spec(image=42)
    with pytest.raises(FileNotFoundError):
        spec(image=tmp_path / "missing.png")
    built = create_spec(
        config,
        "/kling-ai/kling-v2.6/",
        sse=True,
        prompt=None,
        media={"image": "https://a/b.png"},
        idempotency_key="mine",
        options={"negative_prompt": None},
    )
    assert built.url == "http://h/api/v1/generation/sse/kling-ai/kling-v2.6"
    assert built.json_body == {"negative_prompt": None, "image_url": "https://a/b.png"}
    assert built.headers["Idempotency-Key"] == "mine"
    assert built.headers["Accept"] == "text/event-stream"
