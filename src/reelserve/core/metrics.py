"""The metrics port: what the services and the API report, as plain events.

Services call it at the moments that matter (a task created, claimed, ended; an HTTP
request answered; an SSE stream opened or closed) and never see how it is counted. The
Prometheus adapter lives in ``reelserve.observability``; ``NO_METRICS`` is the default,
so a service built without metrics (a test, a tool) reports nothing.
"""

from __future__ import annotations

from typing import Protocol

from reelserve.core.records import Generation


class Metrics(Protocol):
    def task_submitted(self, gen: Generation) -> None:
        """A new task was stored and its price reserved."""

    def task_claimed(self, gen: Generation) -> None:
        """A worker took the task (``gen`` as claimed: IN_PROGRESS, ``started_at`` set)."""

    def task_ended(self, gen: Generation, profile: str | None = None) -> None:
        """The task reached COMPLETED, FAILED or CANCELED; ``profile`` is the engine
        profile of the worker that ran it, when known."""

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """An HTTP request was answered; ``route`` is the route's template, not the path."""

    def stream_opened(self) -> None: ...

    def stream_closed(self) -> None: ...


class NoMetrics:
    """Counts nothing."""

    def task_submitted(self, gen: Generation) -> None:
        pass

    def task_claimed(self, gen: Generation) -> None:
        pass

    def task_ended(self, gen: Generation, profile: str | None = None) -> None:
        pass

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass

    def stream_opened(self) -> None:
        pass

    def stream_closed(self) -> None:
        pass


NO_METRICS: Metrics = NoMetrics()
