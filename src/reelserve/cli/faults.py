"""TEST-ONLY crash points for the ``worker`` process; never set in production.

``REELSERVE_FAULT=<point>`` (read once by the worker command, the composition root) makes
the worker stop itself at one point of its first task, so that the fault tests
(``tests/faults/``) can show that a fresh worker and the reaper take over without losing
or double-charging anything:

- ``after_claim``: SIGKILL just after a task was claimed;
- ``mid_render``: SIGKILL from the progress callback halfway through denoising;
- ``after_upload``: SIGKILL after the output was stored, before the finish transaction;
- ``in_finish``: SIGKILL inside the complete transaction, just before its COMMIT;
- ``pause_after_upload``: SIGSTOP after the output was stored, before finishing (the test
  resumes the process with SIGCONT once another worker has taken the task over);
- ``pause_in_heartbeat``: SIGSTOP inside a heartbeat transaction, holding the task's row
  lock (PostgreSQL must end the frozen session so that the reaper can see the task).

Nothing here runs unless the variable is set; the hooks wrap the worker's collaborators
from outside, so the worker and the store carry no fault code of their own.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine as DbEngine

from reelserve.core.ports import Heartbeat
from reelserve.core.records import Generation
from reelserve.core.render import Engine, ProgressFn, RenderJob, Rendition
from reelserve.core.status import Status
from reelserve.worker.runner import Coordinator, Worker

log = logging.getLogger(__name__)

FAULT_ENV = "REELSERVE_FAULT"
POINTS = (
    "after_claim",
    "mid_render",
    "after_upload",
    "in_finish",
    "pause_after_upload",
    "pause_in_heartbeat",
)


def _stop_self(point: str, sig: signal.Signals = signal.SIGKILL) -> None:
    log.warning("TEST-ONLY fault %s: sending %s to this worker", point, sig.name)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.kill(os.getpid(), sig)


class _CrashAfterClaim:
    """A coordinator that dies as soon as it has claimed a task."""

    def __init__(self, inner: Coordinator) -> None:
        self.inner = inner

    def register(self, worker_id: str, name: str, models: list[str], info: dict[str, Any]) -> None:
        self.inner.register(worker_id, name, models, info)

    def touch(self, worker_id: str) -> None:
        self.inner.touch(worker_id)

    def unregister(self, worker_id: str) -> None:
        self.inner.unregister(worker_id)

    def claim(self, worker_id: str, models: list[str]) -> Generation | None:
        gen = self.inner.claim(worker_id, models)
        if gen is not None:
            _stop_self("after_claim")
        return gen

    def heartbeat(self, gen: Generation, worker_id: str, progress: int) -> Heartbeat:
        return self.inner.heartbeat(gen, worker_id, progress)

    def complete(
        self,
        gen: Generation,
        worker_id: str,
        data: dict[str, Any],
        actual_seconds: float | None = None,
    ) -> Generation:
        return self.inner.complete(gen, worker_id, data, actual_seconds)

    def fail(
        self, gen: Generation, worker_id: str, code: str, message: str, *, retry: bool = False
    ) -> Generation:
        return self.inner.fail(gen, worker_id, code, message, retry=retry)

    def canceled(self, gen: Generation, worker_id: str) -> Generation:
        return self.inner.canceled(gen, worker_id)


class _CrashMidRender:
    """An engine whose progress callback dies once denoising is half done."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.random_weights = inner.random_weights

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition:
        def reporting(fraction: float) -> None:
            progress(fraction)
            if fraction >= 0.5:
                _stop_self("mid_render")

        return self.inner.render(job, reporting)


def _crash_in_complete_transaction(db: DbEngine) -> None:
    """SIGKILL at the COMMIT of the transaction that marks a task COMPLETED: the database
    must roll all of it back (status, capture, release, event)."""

    @sa.event.listens_for(db, "before_cursor_execute")
    def _spot(
        conn: sa.Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("UPDATE GENERATIONS") and _mentions(
            params, Status.COMPLETED.value
        ):
            conn.info["completing"] = True

    @sa.event.listens_for(db, "commit")
    def _commit(conn: sa.Connection) -> None:
        if conn.info.pop("completing", False):
            _stop_self("in_finish")


def _pause_in_heartbeat_transaction(db: DbEngine) -> None:
    """SIGSTOP (once) inside a heartbeat's transaction, after it locked the task's row."""
    fired: list[bool] = []

    @sa.event.listens_for(db, "before_cursor_execute")
    def _spot(
        conn: sa.Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        # The heartbeat's update sets the lease and heartbeat times but, unlike a claim,
        # not the status.
        head, _, _ = statement.upper().partition(" WHERE ")
        heartbeat = head.lstrip().startswith("UPDATE GENERATIONS SET") and (
            "HEARTBEAT_AT=" in head and "STATUS=" not in head
        )
        if heartbeat and not fired:
            fired.append(True)
            _stop_self("pause_in_heartbeat", signal.SIGSTOP)


def _mentions(params: Any, value: str) -> bool:
    if isinstance(params, Mapping):
        return value in params.values()
    if isinstance(params, list | tuple):
        return value in params
    return False


def arm_from_env(worker: Worker, db: DbEngine, environ: Mapping[str, str] | None = None) -> None:
    """Arm the crash point named by ``REELSERVE_FAULT``, if any (tests only)."""
    point = (os.environ if environ is None else environ).get(FAULT_ENV)
    if not point:
        return
    if point not in POINTS:
        raise SystemExit(f"{FAULT_ENV}: must be one of {', '.join(POINTS)}, not {point!r}")
    log.warning("TEST-ONLY fault %s armed: this worker will stop itself", point)
    if point == "after_claim":
        worker.coordinator = _CrashAfterClaim(worker.coordinator)
    elif point == "mid_render":
        worker.engines = {mode: _CrashMidRender(e) for mode, e in worker.engines.items()}
    elif point in ("after_upload", "pause_after_upload"):
        save = worker.outputs.save
        sig = signal.SIGKILL if point == "after_upload" else signal.SIGSTOP
        fired: list[str] = []  # a paused worker resumes: stop at its first task only

        def save_then_stop(key: str, local: Path) -> None:
            save(key, local)
            if not fired:
                fired.append(key)
                _stop_self(point, sig)

        worker.outputs = replace(worker.outputs, save=save_then_stop)
    elif point == "pause_in_heartbeat":
        _pause_in_heartbeat_transaction(db)
    else:
        _crash_in_complete_transaction(db)
