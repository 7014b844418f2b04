"""What the sync and async clients share: configuration from arguments or the
environment, retry policy, request specs (JSON or multipart create bodies, rebuilt for
every attempt) and the polling schedule of the wait helpers. No I/O happens here."""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from reelserve.client._errors import (
    APIConnectionError,
    APIStatusError,
    GenerationCanceledError,
    GenerationFailedError,
    ReelserveError,
    parse_retry_after,
)
from reelserve.client.types import Generation, Status

DEFAULT_BASE_URL = "http://127.0.0.1:8000/api/v1"
DEFAULT_MODEL = "kling-ai/kling-v2.6"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DEFAULT_MAX_RETRIES = 2
DEFAULT_POLL_INTERVAL = 1.0
BASE_URL_ENV = "REELSERVE_BASE_URL"
API_KEY_ENV = "REELSERVE_API_KEY"
USER_AGENT = "reelserve-python-client/0.1"

# Argument name → body field; a file is sent as a multipart part named after the field.
MEDIA_FIELDS = {"image": "image_url", "end_image": "end_image_url", "video": "video_url"}

MediaInput = str | bytes | bytearray | os.PathLike[str]
"""A URL (``str``, sent as is), raw bytes or a local path (uploaded as a file part)."""


@dataclass(frozen=True)
class Backoff:
    """Delays between retries: exponential from ``initial`` to ``maximum`` seconds, less
    up to ``jitter`` of it at random; a server's ``Retry-After`` (when at most
    ``max_retry_after``) is honoured as is instead."""

    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry number ``attempt + 1``."""
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return retry_after
        base = min(self.initial * 2.0**attempt, self.maximum)
        return base * (1.0 - self.jitter * random.random())


@dataclass(frozen=True)
class Config:
    base_url: str
    api_key: str
    timeout: httpx.Timeout
    max_retries: int
    backoff: Backoff

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def absolute(self, url: str) -> str:
        """A result URL as the server gave it, made absolute against the base URL."""
        return str(httpx.URL(self.base_url + "/").join(url))

    def headers(self, *, authorized: bool = True) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if authorized:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def retry_delay(self, spec: RequestSpec, attempt: int, error: ReelserveError) -> float | None:
        """Seconds to wait before trying ``spec`` again, or None to give up with ``error``."""
        if not spec.retry or attempt >= self.max_retries:
            return None
        if isinstance(error, APIConnectionError):
            return self.backoff.delay(attempt)
        if isinstance(error, APIStatusError) and retryable_status(error.status):
            return self.backoff.delay(attempt, parse_retry_after(error.headers))
        return None


def make_config(
    base_url: str | None,
    api_key: str | None,
    timeout: float | httpx.Timeout | None,
    max_retries: int,
    backoff: Backoff | None,
) -> Config:
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if not key:
        raise ReelserveError(
            f"no API key: pass api_key= or set the {API_KEY_ENV} environment variable"
        )
    if max_retries < 0:
        raise ValueError("max_retries must be >= 0")
    if timeout is None:
        resolved = DEFAULT_TIMEOUT
    elif isinstance(timeout, httpx.Timeout):
        resolved = timeout
    else:
        resolved = httpx.Timeout(timeout)
    return Config(base.rstrip("/"), key, resolved, max_retries, backoff or Backoff())


def retryable_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


@dataclass(frozen=True)
class FilePart:
    """One upload, opened afresh for every attempt so that a retry resends it whole."""

    filename: str
    content_type: str
    path: Path | None = None
    content: bytes | None = None

    def open(self, stack: contextlib.ExitStack) -> tuple[str, IO[bytes] | bytes, str]:
        if self.path is not None:
            return self.filename, stack.enter_context(self.path.open("rb")), self.content_type
        return self.filename, self.content or b"", self.content_type


@dataclass
class RequestSpec:
    """Everything needed to build the same request again for a retry."""

    method: str
    url: str
    params: dict[str, Any] | None = None
    json_body: Any = None
    form: dict[str, str] | None = None
    files: dict[str, FilePart] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry: bool = True
    authorized: bool = True
    follow_redirects: bool = False

    def build(
        self, http: httpx.Client | httpx.AsyncClient, config: Config
    ) -> tuple[httpx.Request, contextlib.ExitStack]:
        """The request, and the stack holding its open files (close it after sending)."""
        stack = contextlib.ExitStack()
        files = None
        if self.files:
            files = {name: part.open(stack) for name, part in self.files.items()}
        request = http.build_request(
            self.method,
            self.url,
            params=self.params,
            json=self.json_body,
            data=self.form,
            files=files,
            headers={**config.headers(authorized=self.authorized), **self.headers},
            timeout=config.timeout,
        )
        return request, stack


def model_path(model: str) -> str:
    cleaned = model.strip("/")
    if not cleaned:
        raise ValueError("model must name a provider and model, e.g. 'kling-ai/kling-v2.6'")
    return quote(cleaned, safe="/")


def id_path(generation_id: str) -> str:
    if not generation_id:
        raise ValueError("a generation id is required")
    return quote(generation_id, safe="")


def _text_part(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _file_part(name: str, value: bytes | bytearray | os.PathLike[str]) -> FilePart:
    if isinstance(value, bytes | bytearray):
        return FilePart(name, "application/octet-stream", content=bytes(value))
    path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no such file: {path}")
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FilePart(path.name, guessed, path=path)


def create_spec(
    config: Config,
    model: str,
    *,
    sse: bool,
    prompt: str | None,
    media: Mapping[str, MediaInput | None],
    idempotency_key: str | None,
    options: Mapping[str, Any],
) -> RequestSpec:
    """The create request: JSON, or multipart as soon as one media input is a file.

    It always carries an ``Idempotency-Key`` (a fresh uuid4 unless given), which is what
    makes retrying a create safe."""
    body: dict[str, Any] = dict(options)
    if prompt is not None:
        body["prompt"] = prompt
    files: dict[str, FilePart] = {}
    for argument, value in media.items():
        if value is None:
            continue
        name = MEDIA_FIELDS[argument]
        if name in body:
            raise TypeError(f"give either {argument}= or {name}=, not both")
        if isinstance(value, str):
            body[name] = value
        elif isinstance(value, bytes | bytearray | os.PathLike):
            files[name] = _file_part(name, value)
        else:
            raise TypeError(f"{argument}: expected a URL str, bytes or a path, got {value!r}")
    key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
    prefix = "generation/sse/" if sse else "generation/"
    headers = {"Idempotency-Key": key}
    if sse:
        headers["Accept"] = "text/event-stream"
    # Retrying is safe: a repeat with the same key returns the first task (api.md §7). A
    # server that ignores the header could create twice; give it ``max_retries=0``.
    spec = RequestSpec("POST", config.url(prefix + model_path(model)), headers=headers, retry=True)
    if files:
        spec.form = {k: _text_part(v) for k, v in body.items() if v is not None}
        spec.files = files
    else:
        spec.json_body = body
    return spec


def events_spec(config: Config, generation_id: str, resume: Mapping[str, str]) -> RequestSpec:
    return RequestSpec(
        "GET",
        config.url(f"generation/{id_path(generation_id)}/events"),
        headers={"Accept": "text/event-stream", **resume},
    )


def list_params(limit: int, cursor: str | None, status: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    if status is not None:
        params["status"] = str(status)
    return params


class PollSchedule:
    """Delays between polls: ``interval`` growing by half each time up to 8× itself,
    clipped to what is left of ``timeout``."""

    def __init__(self, interval: float, timeout: float | None) -> None:
        if interval <= 0:
            raise ValueError("poll_interval must be > 0")
        self._next = interval
        self._cap = interval * 8
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def next_delay(self) -> float | None:
        """Seconds until the next poll, or None when the timeout has passed."""
        delay = self._next
        self._next = min(self._next * 1.5, self._cap)
        if self._deadline is None:
            return delay
        remaining = self._deadline - time.monotonic()
        return None if remaining <= 0 else min(delay, remaining)


def finished(record: Generation) -> Generation:
    """The record of a COMPLETED task; the wait helpers' errors for the others."""
    if record.status == Status.FAILED:
        raise GenerationFailedError(record)
    if record.status == Status.CANCELED:
        raise GenerationCanceledError(record)
    return record


def download_target(url: str, path: str | os.PathLike[str], file_name: str | None) -> Path:
    """Where a download goes: ``path``, or inside it when it is a directory."""
    target = Path(path)
    if target.is_dir():
        name = file_name or httpx.URL(url).path.rsplit("/", 1)[-1] or "video.mp4"
        target = target / Path(name).name
    return target
