"""Keeps one running task's lease alive and reports its progress.

A background thread heartbeats every few seconds whatever the job is doing (fetching,
denoising, encoding); progress changes are sent at most twice a second. The engine's
progress callback raises ``JobCanceled`` once a cancel is seen, or ``LeaseLost`` once
the store says this worker no longer holds the task.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

from reelserve.core.errors import JobCanceled, LeaseLost
from reelserve.core.ports import Heartbeat
from reelserve.core.progress import Stage, advance, overall_percent

log = logging.getLogger(__name__)

MIN_PROGRESS_INTERVAL_S = 0.5
# Even with no progress to report (fetching, encoding) a cancel is seen within this.
MAX_QUIET_S = 2.0


class JobTracker:
    def __init__(self, send: Callable[[int], Heartbeat], lease_s: float) -> None:
        self._send = send
        self._interval = min(max(lease_s / 3, 0.2), MAX_QUIET_S)
        self._lock = threading.Lock()
        self._percent = 0
        self._sent_percent = -1
        self._sent_at = 0.0
        self._canceled = False
        self._lost = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def __enter__(self) -> JobTracker:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    @property
    def percent(self) -> int:
        return self._percent

    def check(self) -> None:
        """Raise if the task was canceled or the lease was lost."""
        if self._lost:
            raise LeaseLost()
        if self._canceled:
            raise JobCanceled()

    def report(self, stage: Stage, fraction: float) -> None:
        with self._lock:
            self._percent = advance(self._percent, overall_percent(stage, fraction))
        if time.monotonic() - self._sent_at >= MIN_PROGRESS_INTERVAL_S:
            self._wake.set()
        self.check()

    def stage_progress(self, stage: Stage) -> Callable[[float], None]:
        return lambda fraction: self.report(stage, fraction)

    def _beat(self) -> None:
        with self._lock:
            percent = self._percent
        try:
            result = self._send(percent)
        except LeaseLost:
            self._lost = True
            return
        except Exception:
            # The database may be briefly away; the lease has slack for a missed beat.
            log.warning("heartbeat failed", exc_info=True)
            return
        self._sent_percent = percent
        self._sent_at = time.monotonic()
        if result.cancel_requested:
            self._canceled = True

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._beat()
            if self._lost:
                return
            # Wake early for progress, but never beat faster than twice a second.
            self._wake.wait(self._interval)
            self._wake.clear()
            pause = MIN_PROGRESS_INTERVAL_S - (time.monotonic() - self._sent_at)
            if pause > 0 and not self._stop.is_set():
                self._stop.wait(pause)
