"""One error root carrying the wire code of api.md §6.

Each error's docstring is its default message. ``field`` names the offending input
field so every 4xx can say which field broke which rule.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    INVALID_INPUT = "VIDEO_GENERATION_INVALID_INPUT"
    UNSUPPORTED_MODEL = "VIDEO_GENERATION_UNSUPPORTED_MODEL"
    UNAUTHORIZED = "UNAUTHORIZED"
    INSUFFICIENT_CREDITS = "VIDEO_GENERATION_INSUFFICIENT_CREDITS"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    CONTENT_REJECTED = "VIDEO_GENERATION_CONTENT_REJECTED"
    RATE_LIMITED = "VIDEO_GENERATION_RATE_LIMITED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    PROVIDER_UNAVAILABLE = "VIDEO_GENERATION_PROVIDER_UNAVAILABLE"
    # Failure codes carried by a FAILED task.
    FAILED = "VIDEO_GENERATION_FAILED"
    TIMEOUT = "VIDEO_GENERATION_TIMEOUT"


class ReelserveError(Exception):
    """Something went wrong."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.field = field
        super().__init__(self.message)


class InvalidInput(ReelserveError):
    """The request is invalid."""

    code = ErrorCode.INVALID_INPUT


class InputTooLarge(InvalidInput):
    """The uploaded or fetched file is over its size limit."""


class UnsupportedModel(ReelserveError):
    """This provider/model is not served here."""

    code = ErrorCode.UNSUPPORTED_MODEL


class Unauthorized(ReelserveError):
    """Missing or invalid API key."""

    code = ErrorCode.UNAUTHORIZED


class InsufficientCredits(ReelserveError):
    """Not enough credits for this generation."""

    code = ErrorCode.INSUFFICIENT_CREDITS


class NotFound(ReelserveError):
    """No such generation."""

    code = ErrorCode.NOT_FOUND


class Conflict(ReelserveError):
    """The request conflicts with the current state."""

    code = ErrorCode.CONFLICT

    def __init__(self, message: str | None = None, *, record: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.record = record


class RateLimited(ReelserveError):
    """Too many requests; try again later."""

    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str | None = None, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ProviderUnavailable(ReelserveError):
    """No worker can serve this model right now."""

    code = ErrorCode.PROVIDER_UNAVAILABLE


class GenerationFailed(ReelserveError):
    """The generation failed."""

    code = ErrorCode.FAILED


class GenerationTimeout(ReelserveError):
    """The generation ran out of time."""

    code = ErrorCode.TIMEOUT


class LeaseLost(ReelserveError):
    """This worker no longer holds the task (lease expired or attempt superseded)."""


class JobCanceled(ReelserveError):
    """The task was canceled while running."""
