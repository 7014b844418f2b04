"""The interfaces the services need; adapters in store/, blobs/ implement them.

Every state change of a generation is conditional on ``(id, attempt, status)`` inside
the store, so a worker that lost its lease can never finish or charge twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reelserve.core.capabilities import LiveWorker
from reelserve.core.ledger import Bucket, Split
from reelserve.core.records import Generation
from reelserve.core.retention import FileKind
from reelserve.core.status import Status


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str


@dataclass(frozen=True)
class Caller:
    """Who is calling: the workspace, and the key it used."""

    workspace: Workspace
    key_id: str


@dataclass(frozen=True)
class StoredKey:
    """An active key found by its prefix: the caller it stands for and its digest."""

    caller: Caller
    digest: str


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    workspace_id: str
    prefix: str
    name: str | None
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class Balances:
    workspace_id: str
    subscription: int
    permanent: int
    subscription_period_end: float | None

    @property
    def total(self) -> int:
        return self.subscription + self.permanent


@dataclass(frozen=True)
class NewGeneration:
    id: str
    workspace_id: str
    model: str
    mode: str
    input: dict[str, Any]
    plan: dict[str, Any]
    price: int
    max_attempts: int
    deadline_s: float
    api_key_id: str | None = None
    # Refuse (429) when the key already has this many tasks queued or running.
    max_active_per_key: int | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class IdempotencyClaim:
    key: str
    request_hash: str
    ttl_s: float


@dataclass(frozen=True)
class Event:
    seq: int
    generation_id: str
    status: Status
    snapshot: dict[str, Any]


@dataclass(frozen=True)
class Heartbeat:
    cancel_requested: bool


@dataclass(frozen=True)
class ReapReport:
    requeued: int = 0
    timed_out: int = 0
    canceled: int = 0
    # The tasks this pass ended (FAILED or CANCELED), as they are now.
    ended: tuple[Generation, ...] = ()


@dataclass(frozen=True)
class WorkspaceSharing:
    """A workspace's share of the workers, with its queued and running tasks now."""

    name: str
    max_running: int | None  # None: the server default; 0: no cap
    priority: int
    queued: int
    running: int


class Store(Protocol):
    # Workspaces and keys.
    def ensure_workspace(self, name: str) -> Workspace: ...
    def find_workspace(self, name: str) -> Workspace | None: ...
    def count_workspaces(self) -> int: ...
    def add_key(self, workspace_id: str, prefix: str, digest: str, name: str | None) -> str: ...
    def workspace_for_key(self, digest: str) -> Workspace | None: ...
    def caller_for_key(self, digest: str) -> Caller | None: ...
    def admit(self, key_id: str, window_s: float, limit: int) -> float | None: ...
    def revoke_key(self, prefix_or_id: str) -> bool: ...
    def key_by_prefix(self, prefix: str) -> StoredKey | None: ...
    def rotate_key(
        self, prefix_or_id: str, new_prefix: str, new_digest: str, grace_s: float
    ) -> str | None: ...
    def list_keys(self, workspace_id: str) -> list[ApiKeyInfo]: ...

    # Credits.
    def grant(
        self,
        workspace_id: str,
        bucket: Bucket,
        amount: int,
        period_end: float | None = None,
    ) -> Balances: ...
    def balances(self, workspace_id: str) -> Balances: ...
    def ledger_sums(self, workspace_id: str) -> dict[Bucket, int]: ...

    # Generations (API side).
    def submit(
        self, new: NewGeneration, idempotency: IdempotencyClaim | None
    ) -> tuple[Generation, bool]: ...
    def get(self, generation_id: str) -> Generation | None: ...
    def list_for_workspace(
        self,
        workspace_id: str,
        statuses: Iterable[Status] | None,
        limit: int,
        before_id: str | None = None,
    ) -> list[Generation]: ...
    def cancel(self, workspace_id: str, generation_id: str) -> Generation: ...
    def events_after(self, generation_id: str, after_seq: int) -> list[Event]: ...

    # Work (worker side), fenced by attempt. ``default_max_running`` caps the running tasks
    # of a workspace whose own cap is unset (None or 0: no cap).
    def claim(
        self,
        worker_id: str,
        models: Iterable[str],
        lease_s: float,
        *,
        default_max_running: int | None = None,
    ) -> Generation | None: ...
    def heartbeat(
        self, generation_id: str, attempt: int, worker_id: str, progress: int, lease_s: float
    ) -> Heartbeat: ...
    def complete(
        self,
        generation_id: str,
        attempt: int,
        worker_id: str,
        data: dict[str, Any],
        charge: int,
    ) -> Generation: ...
    def fail(
        self,
        generation_id: str,
        attempt: int,
        worker_id: str,
        code: str,
        message: str,
        retry_in_s: float | None = None,
    ) -> Generation: ...
    def finish_canceled(self, generation_id: str, attempt: int, worker_id: str) -> Generation: ...
    def reap(self, backoff_s: float) -> ReapReport: ...

    # Retention: finished tasks whose files are past their age, and marking them gone.
    def expirable(self, kind: FileKind, older_than_s: float, limit: int) -> list[Generation]: ...
    def mark_expired(self, generation_id: str, kind: FileKind) -> bool: ...

    # Workers.
    def register_worker(
        self, worker_id: str, name: str, models: list[str], info: dict[str, Any]
    ) -> None: ...
    def touch_worker(self, worker_id: str) -> None: ...
    def remove_worker(self, worker_id: str) -> None: ...
    def served_models(self, fresh_within_s: float) -> dict[str, dict[str, Any]]: ...
    def worker_info(self, worker_id: str) -> dict[str, Any] | None: ...

    # Fair sharing and queue gauges.
    def set_sharing(
        self, name: str, *, max_running: int | None = None, priority: int | None = None
    ) -> WorkspaceSharing: ...
    def clear_max_running(self, name: str) -> WorkspaceSharing: ...
    def list_sharing(self) -> list[WorkspaceSharing]: ...
    def active_counts(self) -> dict[tuple[str, Status], int]: ...
    def live_workers(self, fresh_within_s: float) -> list[LiveWorker]: ...

    # Health.
    def ping(self) -> None: ...


class Blobs(Protocol):
    """Where uploads and outputs live. Keys are relative, slash-separated paths."""

    def put_file(self, key: str, source: Path) -> None: ...
    def local_path(self, key: str) -> Path | None: ...
    def fetch_to(self, key: str, dest: Path) -> None: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...

    # Direct links to the blob store, valid for ``ttl_s`` seconds: S3 presigned URLs. None
    # when the store has no such links (the local folder): clients then go through the API,
    # which serves HMAC-signed ``/files`` links and takes worker uploads itself.
    def presigned_get(self, key: str, ttl_s: float) -> str | None: ...
    def presigned_put(self, key: str, ttl_s: float) -> str | None: ...


__all__ = [
    "ApiKeyInfo",
    "Balances",
    "Blobs",
    "Event",
    "Heartbeat",
    "IdempotencyClaim",
    "NewGeneration",
    "ReapReport",
    "Split",
    "Store",
    "StoredKey",
    "Workspace",
    "WorkspaceSharing",
]
