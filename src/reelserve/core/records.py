"""The task record of api.md §3, built from a stored generation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reelserve.core.ledger import ZERO, Split
from reelserve.core.spec import BLOB_REF_PREFIX, MEDIA_FIELDS
from reelserve.core.status import Status

# Turns a blob key into a (url, expires_at) pair; the API signs, the store does not.
UrlSigner = Callable[[str], tuple[str, datetime]]


@dataclass(frozen=True)
class Generation:
    """One task as stored. Times are seconds since the epoch on the database clock."""

    id: str
    workspace_id: str
    model: str
    mode: str
    status: Status
    input: dict[str, Any]
    plan: dict[str, Any]
    price: int
    reserved: Split
    usage: Split
    progress: int
    attempt: int
    max_attempts: int
    cancel_requested: bool
    created_at: float
    started_at: float | None = None
    completed_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    data: dict[str, Any] | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    queue_position: int | None = None
    # When retention deleted the task's output files and its uploaded files.
    outputs_expired_at: float | None = None
    uploads_expired_at: float | None = None
    # The X-Request-ID of the create: the worker logs under it too.
    request_id: str | None = None


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sign_input(input_: Mapping[str, Any], sign: UrlSigner) -> dict[str, Any]:
    shown = dict(input_)
    for name in MEDIA_FIELDS:
        value = shown.get(name)
        if isinstance(value, str) and value.startswith(BLOB_REF_PREFIX):
            shown[name] = sign(value.removeprefix(BLOB_REF_PREFIX))[0]
    return shown


def _sign_data(data: Mapping[str, Any], sign: UrlSigner) -> dict[str, Any]:
    videos = []
    for video in data.get("videos", []):
        shown = {k: v for k, v in video.items() if k not in ("key", "expired_at")}
        if video.get("expired_at"):
            # Deleted by retention: the metadata stays, the link goes.
            shown = {"url": None, **shown, "expires_at": None, "expired_at": video["expired_at"]}
        else:
            url, expires = sign(video["key"])
            shown = {"url": url, **shown, "expires_at": iso(expires.timestamp())}
        videos.append(shown)
    out = {k: v for k, v in data.items() if k not in ("videos", "video")}
    out["videos"] = videos
    if videos:
        out["video"] = videos[0]
    return out


def expire_snapshot(
    snap: Mapping[str, Any], outputs_expired_at: float | None, uploads_expired_at: float | None
) -> dict[str, Any]:
    """``snap`` as it reads once retention deleted files: expired videos carry
    ``expired_at`` (and lose their link when presented), expired uploads become null."""
    record = dict(snap)
    if uploads_expired_at:
        shown = dict(snap["input"])
        for name in MEDIA_FIELDS:
            value = shown.get(name)
            if isinstance(value, str) and value.startswith(BLOB_REF_PREFIX):
                shown[name] = None
        record["input"] = shown
    data = snap.get("data")
    if outputs_expired_at and data:
        when = iso(outputs_expired_at)
        videos = [{**video, "expired_at": when} for video in data.get("videos", [])]
        record["data"] = {**data, "videos": videos}
    return record


def snapshot(gen: Generation) -> dict[str, Any]:
    """The record with blob keys instead of URLs: what an event stores."""
    record: dict[str, Any] = {"id": gen.id, "status": gen.status.value}
    if gen.status is Status.FAILED:
        record["code"] = gen.error_code
        record["message"] = gen.error_message
    record["input"] = gen.input
    record["data"] = gen.data if gen.status is Status.COMPLETED else None
    usage = (
        gen.usage if gen.status in (Status.IN_QUEUE, Status.IN_PROGRESS, Status.COMPLETED) else ZERO
    )
    record["usage"] = usage.as_usage()
    record["progress"] = gen.progress
    record["queue_position"] = gen.queue_position if gen.status is Status.IN_QUEUE else None
    record["created_at"] = iso(gen.created_at)
    record["started_at"] = iso(gen.started_at)
    record["completed_at"] = iso(gen.completed_at)
    if gen.outputs_expired_at or gen.uploads_expired_at:
        return expire_snapshot(record, gen.outputs_expired_at, gen.uploads_expired_at)
    return record


def present(snap: Mapping[str, Any], sign: UrlSigner) -> dict[str, Any]:
    """A snapshot made public: blob keys become signed, expiring URLs."""
    record = dict(snap)
    record["input"] = _sign_input(snap["input"], sign)
    if snap.get("data"):
        record["data"] = _sign_data(snap["data"], sign)
    return record


def running_item(gen: Generation, sign: UrlSigner) -> dict[str, Any]:
    """An item of ``GET /generations/running``: id, status, usage, input."""
    return {
        "id": gen.id,
        "status": gen.status.value,
        "usage": gen.usage.as_usage(),
        "input": _sign_input(gen.input, sign),
    }
