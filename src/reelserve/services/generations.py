"""Reading and canceling a workspace's generations; another workspace's are "not found"."""

from __future__ import annotations

from reelserve.core.errors import InvalidInput, NotFound
from reelserve.core.metrics import NO_METRICS, Metrics
from reelserve.core.ports import Store, Workspace
from reelserve.core.records import Generation
from reelserve.core.status import ACTIVE, Status


def get_own(store: Store, workspace: Workspace, generation_id: str) -> Generation:
    gen = store.get(generation_id)
    if gen is None or gen.workspace_id != workspace.id:
        raise NotFound(f"id: no generation {generation_id!r}", field="id")
    return gen


def running(store: Store, workspace: Workspace, limit: int) -> list[Generation]:
    return store.list_for_workspace(workspace.id, ACTIVE, limit)


def history(
    store: Store,
    workspace: Workspace,
    *,
    limit: int,
    cursor: str | None,
    status: str | None,
) -> tuple[list[Generation], str | None]:
    statuses = None
    if status is not None:
        try:
            statuses = [Status(status)]
        except ValueError:
            allowed = ", ".join(s.value for s in Status)
            raise InvalidInput(f"status: must be one of {allowed}", field="status") from None
    items = store.list_for_workspace(workspace.id, statuses, limit + 1, cursor)
    next_cursor = items[limit - 1].id if len(items) > limit else None
    return items[:limit], next_cursor


def cancel(
    store: Store, workspace: Workspace, generation_id: str, metrics: Metrics = NO_METRICS
) -> Generation:
    get_own(store, workspace, generation_id)
    gen = store.cancel(workspace.id, generation_id)
    if gen.status.terminal:  # a queued task; a running one ends when its worker stops
        metrics.task_ended(gen)
    return gen
