"""Response models. Every model tolerates fields it does not know (``extra="allow"``) and
treats everything but a record's ``id`` and ``status`` as optional, so the SDK reads any
server of the platform's contract, with or without reelserve's own fields."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

__all__ = [
    "TERMINAL_STATUSES",
    "Credits",
    "Generation",
    "GenerationData",
    "Page",
    "RunningItem",
    "Status",
    "Usage",
    "Video",
]


class Status(StrEnum):
    """The task states of the contract. ``Generation.status`` stays a plain ``str`` (a
    server may add states); it compares equal to these members."""

    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


TERMINAL_STATUSES: frozenset[str] = frozenset(
    {Status.COMPLETED.value, Status.FAILED.value, Status.CANCELED.value}
)


def _lenient(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A value that does not parse becomes None instead of failing the whole record."""
    try:
        return handler(value)
    except ValidationError:
        return None


Timestamp = Annotated[datetime | None, WrapValidator(_lenient)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Usage(_Model):
    """Credits reserved (then captured, or released to zeros) for one task."""

    total: int = 0
    subscription: int = 0
    permanent: int = 0


class Video(_Model):
    """One output video. ``url`` may be signed and expiring (``expires_at``); it is None
    once the server's retention deleted the file (``expired_at``)."""

    url: str | None = None
    file_name: str | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    fps: float | None = None
    has_audio: bool | None = None
    expires_at: Timestamp = None
    expired_at: Timestamp = None


class GenerationData(_Model):
    """``data`` of a COMPLETED record."""

    type: str | None = None
    n: int | None = None
    actual_prompt: str | None = None
    videos: list[Video] = Field(default_factory=list)
    video: Video | None = None


class Generation(_Model):
    """A task record (api.md §3)."""

    id: str
    status: str
    input: dict[str, Any] = Field(default_factory=dict)
    data: Annotated[GenerationData | None, WrapValidator(_lenient)] = None
    usage: Usage | None = None
    progress: Annotated[int | None, WrapValidator(_lenient)] = None
    queue_position: Annotated[int | None, WrapValidator(_lenient)] = None
    created_at: Timestamp = None
    started_at: Timestamp = None
    completed_at: Timestamp = None
    code: str | None = None
    message: str | None = None

    @property
    def done(self) -> bool:
        """True once the task is COMPLETED, FAILED or CANCELED."""
        return self.status in TERMINAL_STATUSES

    @property
    def videos(self) -> list[Video]:
        """Every output video (empty until COMPLETED)."""
        if self.data is None:
            return []
        if self.data.videos:
            return list(self.data.videos)
        return [self.data.video] if self.data.video is not None else []

    @property
    def video(self) -> Video | None:
        """The first output video, or None until COMPLETED."""
        if self.data is not None and self.data.video is not None:
            return self.data.video
        videos = self.videos
        return videos[0] if videos else None


class RunningItem(_Model):
    """One entry of ``GET /generations/running``."""

    id: str
    status: str
    usage: Usage | None = None
    input: dict[str, Any] = Field(default_factory=dict)


class Credits(_Model):
    """The workspace's balances (``GET /credits``)."""

    workspace: str | None = None
    subscription: int = 0
    permanent: int = 0
    total: int = 0
    subscription_period_end: Timestamp = None


class Page(_Model):
    """One page of history, newest first; ``next_cursor`` is None on the last page."""

    items: list[Generation] = Field(default_factory=list)
    next_cursor: str | None = None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None
