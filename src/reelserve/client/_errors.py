"""Exceptions: one root, one class per HTTP status of the contract (api.md §6), transport
failures, and the outcomes a wait helper refuses to hand back as a plain record."""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from reelserve.client.types import Generation

__all__ = [
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "ConflictError",
    "ContentRejectedError",
    "GenerationCanceledError",
    "GenerationError",
    "GenerationFailedError",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidInputError",
    "NotFoundError",
    "RateLimitError",
    "ReelserveError",
    "ServiceUnavailableError",
    "UnsupportedModelError",
    "WaitTimeoutError",
]

UNSUPPORTED_MODEL = "VIDEO_GENERATION_UNSUPPORTED_MODEL"
_FIELD = re.compile(r"^\s*([A-Za-z_][\w.\[\]-]*)\s*:\s")


class ReelserveError(Exception):
    """Root of every exception this SDK raises on purpose."""


class APIStatusError(ReelserveError):
    """The server answered with a non-2xx status and (usually) the contract's error body
    ``{"error": CODE, "code": CODE, "message": "..."}``."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        body: object = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code or 'ERROR'}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.headers: dict[str, str] = dict(headers or {})


class InvalidInputError(APIStatusError):
    """400 or 413: the body failed validation. ``field`` is the name the message starts
    with (``"prompt: is required"`` → ``"prompt"``), or None when it names none."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        body: object = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, body, headers=headers)
        match = _FIELD.match(message)
        self.field: str | None = match.group(1) if match else None


class UnsupportedModelError(InvalidInputError):
    """400 ``VIDEO_GENERATION_UNSUPPORTED_MODEL``: the server does not serve that model."""


class AuthenticationError(APIStatusError):
    """401: missing or wrong API key."""


class InsufficientCreditsError(APIStatusError):
    """402: the workspace cannot pay for this generation; nothing was stored."""


class NotFoundError(APIStatusError):
    """404: unknown id (or another workspace's), or a route this server lacks."""


class ConflictError(APIStatusError):
    """409: cancel of a finished task, or an idempotency key reused with another body.
    ``record`` is the task as it stands, when the server sent it."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        body: object = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, body, headers=headers)
        raw = body.get("record") if isinstance(body, dict) else None
        self.record: Generation | None = None
        if isinstance(raw, dict):
            try:
                self.record = Generation.model_validate(raw)
            except ValueError:
                self.record = None


class ContentRejectedError(APIStatusError):
    """422: the moderation hook refused the request."""


class RateLimitError(APIStatusError):
    """429: a per-key rate or concurrency limit. ``retry_after`` is in seconds, from the
    ``Retry-After`` header, or None when the server gave none."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        body: object = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, body, headers=headers)
        self.retry_after = parse_retry_after(self.headers)


class InternalServerError(APIStatusError):
    """500 (and any other 5xx but 503)."""


class ServiceUnavailableError(APIStatusError):
    """503: no worker can serve this model, or the server is overloaded."""


class APIResponseError(ReelserveError):
    """A 2xx answer whose body is not what the contract describes."""

    def __init__(self, message: str, body: object = None) -> None:
        super().__init__(message)
        self.body = body


class APIConnectionError(ReelserveError):
    """The request did not get an HTTP answer (refused, reset, DNS, TLS...)."""

    def __init__(self, message: str = "Connection error.", *, request: Any = None) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """The request timed out."""

    def __init__(self, message: str = "Request timed out.", *, request: Any = None) -> None:
        super().__init__(message, request=request)


class GenerationError(ReelserveError):
    """A wait helper saw the task end other than COMPLETED; ``record`` is that task."""

    def __init__(self, record: Generation, message: str) -> None:
        super().__init__(message)
        self.record = record


class GenerationFailedError(GenerationError):
    """The task ended FAILED; ``code`` and ``message`` are the record's."""

    def __init__(self, record: Generation) -> None:
        self.code = record.code
        self.message = record.message or "the generation failed"
        super().__init__(record, f"{record.id} FAILED ({self.code or 'no code'}): {self.message}")


class GenerationCanceledError(GenerationError):
    """The task ended CANCELED."""

    def __init__(self, record: Generation) -> None:
        super().__init__(record, f"{record.id} was canceled")


class WaitTimeoutError(ReelserveError, TimeoutError):
    """A wait helper gave up before the task ended; ``record`` is the last one seen."""

    def __init__(self, record: Generation, timeout: float) -> None:
        super().__init__(f"{record.id} still {record.status} after {timeout:g}s")
        self.record = record
        self.timeout = timeout


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidInputError,
    422: ContentRejectedError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
}


def error_from_response(response: httpx.Response) -> APIStatusError:
    """The exception for a non-2xx response whose body has been read."""
    body: object
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = response.text or None
    code: str | None = None
    message = response.reason_phrase or "HTTP error"
    if isinstance(body, dict):
        raw_code = body.get("code") or body.get("error")
        code = raw_code if isinstance(raw_code, str) else None
        raw_message = body.get("message") or body.get("detail")
        if isinstance(raw_message, str):
            message = raw_message
    elif isinstance(body, str) and body.strip():
        message = body.strip()[:500]
    status = response.status_code
    kind = _BY_STATUS.get(status)
    if status == 400 and code == UNSUPPORTED_MODEL:
        kind = UnsupportedModelError
    elif kind is None:
        kind = InternalServerError if status >= 500 else APIStatusError
    return kind(status, code, message, body, headers=response.headers)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = _seconds(lowered.get("retry-after-ms"))
    if raw_ms is not None:
        return raw_ms / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    seconds = _seconds(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _seconds(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return max(value, 0.0) if math.isfinite(value) else None
