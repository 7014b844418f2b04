"""Hostile multipart bodies: many parts, huge names and headers, oversize streams. Each is a
clear 4xx naming the rule, stores and charges nothing, and the server's memory stays flat."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reelserve.api.multipart import MAX_PARTS, MAX_TEXT_FIELDS
from tests.api.conftest import MODEL, Service, assert_error
from tests.live_service import start_service

BOUNDARY = "hostileboundary"


def _body(parts: list[tuple[str, bytes]]) -> bytes:
    """Raw multipart: (header lines, payload) per part; headers written as given."""
    out = bytearray()
    for headers, payload in parts:
        out += f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + payload + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


def _post(svc: Service, body: bytes) -> httpx.Response:
    headers = {**svc.auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return svc.client.post(f"/api/v1/generation/{MODEL}", content=body, headers=headers)


def _text(name: str, value: bytes = b"x") -> tuple[str, bytes]:
    return f'Content-Disposition: form-data; name="{name}"', value


def _nothing_stored(svc: Service) -> None:
    assert svc.store.list_for_workspace(svc.workspace_id, None, 10) == []
    assert svc.credits()["total"] == 1000
    assert not [p for p in svc.settings.data_dir.rglob("*") if p.is_file() and "upload" in p.name]


@pytest.mark.parametrize(
    ("parts", "mentions"),
    [
        # Hundreds of parts, distinct names or one name repeated.
        ([_text(f"f{i}") for i in range(500)], f"at most {MAX_TEXT_FIELDS} text fields"),
        ([_text("prompt") for _ in range(500)], f"at most {MAX_PARTS} multipart parts"),
        # A field name of 100 KB.
        ([_text("p" * 100_000)], "header"),
        ([_text("p" * 1_000)], "field names must be at most"),
        # One header value of a megabyte (a giant filename).
        (
            [
                (
                    'Content-Disposition: form-data; name="image_url"; filename="'
                    + "a" * 1_000_000
                    + '"',
                    b"\x89PNG",
                )
            ],
            "header",
        ),
        # Thousands of small headers on one part.
        (
            [
                (
                    "\r\n".join(f"X-H{i}: v" for i in range(5_000))
                    + '\r\nContent-Disposition: form-data; name="prompt"',
                    b"x",
                )
            ],
            "header",
        ),
        # Header lines under the parser's line limit that add up past ours.
        (
            [
                (
                    "\r\n".join(f"X-H{i}: {'v' * 4000}" for i in range(3))
                    + '\r\nContent-Disposition: form-data; name="prompt"',
                    b"x",
                )
            ],
            "header",
        ),
        # A part without a form-data name.
        ([("Content-Type: text/plain", b"x")], "form-data name"),
    ],
    ids=[
        "500-names",
        "500-same",
        "huge-name",
        "long-name",
        "huge-filename",
        "many-headers",
        "long-lines",
        "no-name",
    ],
)
def test_hostile_parts_are_refused(
    queued_service: Service, parts: list[tuple[str, bytes]], mentions: str
) -> None:
    response = _post(queued_service, _body(parts))
    assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", mentions)
    _nothing_stored(queued_service)


def test_truncated_multipart_is_a_clear_400(queued_service: Service) -> None:
    body = _body([_text("prompt", b"a cat")])[:-20]  # cut inside the closing boundary
    response = _post(queued_service, body)
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) >= {"error", "code", "message"}
    _nothing_stored(queued_service)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, str]]:
    for service in start_service(tmp_path, engine=None):
        key, _ = service.new_account()
        yield service.base_url, key


def test_an_oversize_upload_is_refused_while_streaming_with_flat_memory(
    live: tuple[str, str],
) -> None:
    """200 MB offered for a 10 MB field over real HTTP: the server stops reading at the cap,
    and the process (client generator and server, one process) never holds the body."""
    base_url, key = live
    chunk = b"\0" * (1 << 20)
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="image_url"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        for _ in range(200):
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    tracemalloc.start()
    try:
        try:
            response = httpx.post(
                f"{base_url}/generation/{MODEL}",
                content=body(),
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                },
                timeout=60,
            )
        except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
            response = None  # the server answered and closed while we were still sending
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if response is not None:
        assert_error(response, 413, "VIDEO_GENERATION_INVALID_INPUT", "image_url")
    assert peak < 40 * (1 << 20), f"peak traced memory {peak / (1 << 20):.0f} MiB"
    assert sent < 200 * (1 << 20) or response is not None
