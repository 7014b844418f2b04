"""Prometheus metrics: the ``Metrics`` port counted with ``prometheus_client``, and the
queue gauges read from the store at scrape time.

Several processes on one host (uvicorn workers, API replicas, ``reelserve worker``
processes) share their counts through ``PROMETHEUS_MULTIPROC_DIR``: every process writes
its values to files there and any process's ``/metrics`` answers with the sum. The
variable must be set before the processes start, the folder must exist and be emptied
between runs of the whole deployment (prometheus_client's rules).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reelserve.core.records import Generation
from reelserve.core.status import Status

log = logging.getLogger(__name__)

# (model, status) → tasks, for IN_QUEUE and IN_PROGRESS: the store's ``active_counts``.
ActiveCounts = Callable[[], Mapping[tuple[str, Status], int]]

WAIT_BUCKETS = (0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
GENERATION_BUCKETS = (1, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class QueueCollector(Collector):
    """Queued and running tasks per model, counted by the store when scraped."""

    def __init__(self, active_counts: ActiveCounts, models: Iterable[str]) -> None:
        self.active_counts = active_counts
        self.models = sorted(models)

    def collect(self) -> Iterator[Metric]:
        try:
            counts = self.active_counts()
        except Exception:
            # A scrape must not fail with the database; the gauges are just missing.
            log.warning("queue gauges: the store could not be read", exc_info=True)
            return
        models = sorted(set(self.models) | {model for model, _ in counts})
        depth = GaugeMetricFamily(
            "reelserve_queue_depth", "Tasks waiting in the queue (IN_QUEUE).", labels=["model"]
        )
        running = GaugeMetricFamily(
            "reelserve_tasks_running", "Tasks being generated (IN_PROGRESS).", labels=["model"]
        )
        for model in models:
            depth.add_metric([model], counts.get((model, Status.IN_QUEUE), 0))
            running.add_metric([model], counts.get((model, Status.IN_PROGRESS), 0))
        yield depth
        yield running


class PrometheusMetrics:
    """The ``Metrics`` port for Prometheus; ``exposition`` renders ``/metrics``."""

    def __init__(
        self,
        active_counts: ActiveCounts | None = None,
        models: Iterable[str] = (),
        *,
        multiprocess_dir: str | None = None,
    ) -> None:
        self.multiprocess_dir = multiprocess_dir
        # Multi-process values live in files, not in a registry; otherwise one registry per
        # instance, so that several apps in one process (tests) never collide.
        registry = None if multiprocess_dir else CollectorRegistry()
        self._registry = registry
        self._queue = QueueCollector(active_counts, models) if active_counts else None
        if registry is not None and self._queue is not None:
            registry.register(self._queue)
        self.claim_wait = Histogram(
            "reelserve_claim_wait_seconds",
            "From create to the first claim by a worker.",
            ["model"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.generation = Histogram(
            "reelserve_generation_seconds",
            "From the first start to completion, of COMPLETED tasks.",
            ["mode", "quality", "profile"],
            buckets=GENERATION_BUCKETS,
            registry=registry,
        )
        self.failures = Counter(
            "reelserve_task_failures",
            "Tasks that ended FAILED, by error code.",
            ["code"],
            registry=registry,
        )
        self.ended = Counter(
            "reelserve_tasks_ended", "Tasks that ended, by status.", ["status"], registry=registry
        )
        self.reserved = Counter(
            "reelserve_credits_reserved", "Credits reserved at create.", registry=registry
        )
        self.captured = Counter(
            "reelserve_credits_captured", "Credits charged for COMPLETED tasks.", registry=registry
        )
        self.released = Counter(
            "reelserve_credits_released",
            "Reserved credits given back (FAILED, CANCELED, or charged less).",
            registry=registry,
        )
        self.http = Histogram(
            "reelserve_http_request_duration_seconds",
            "HTTP requests by method, route template and status (SSE: the whole stream).",
            ["method", "route", "status"],
            registry=registry,
        )
        self.streams = Gauge(
            "reelserve_sse_streams_open",
            "Server-Sent Event streams open now.",
            registry=registry,
            multiprocess_mode="livesum",
        )

    # -- the port -------------------------------------------------------------------------

    def task_submitted(self, gen: Generation) -> None:
        self.reserved.inc(gen.reserved.total)

    def task_claimed(self, gen: Generation) -> None:
        if gen.attempt == 1 and gen.started_at is not None:
            self.claim_wait.labels(gen.model).observe(max(gen.started_at - gen.created_at, 0.0))

    def task_ended(self, gen: Generation, profile: str | None = None) -> None:
        self.ended.labels(gen.status.value).inc()
        captured = gen.usage.total if gen.status is Status.COMPLETED else 0
        self.captured.inc(captured)
        self.released.inc(max(gen.reserved.total - captured, 0))
        if gen.status is Status.FAILED:
            self.failures.labels(gen.error_code or "UNKNOWN").inc()
        if (
            gen.status is Status.COMPLETED
            and gen.started_at is not None
            and gen.completed_at is not None
        ):
            quality = str(gen.input.get("quality", "standard"))
            self.generation.labels(gen.mode, quality, profile or "unknown").observe(
                max(gen.completed_at - gen.started_at, 0.0)
            )

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http.labels(method, route, str(status)).observe(seconds)

    def stream_opened(self) -> None:
        self.streams.inc()

    def stream_closed(self) -> None:
        self.streams.dec()

    # -- exposition -----------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The text format body and its content type."""
        if self.multiprocess_dir is None:
            assert self._registry is not None
            return generate_latest(self._registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        if self._queue is not None:
            registry.register(self._queue)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """On a process's exit in multi-process mode: its live gauges stop counting."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


def from_environment(
    active_counts: ActiveCounts | None, models: Iterable[str], environ: Mapping[str, str]
) -> PrometheusMetrics:
    """Multi-process when ``PROMETHEUS_MULTIPROC_DIR`` is set (as prometheus_client reads
    it when first imported)."""
    return PrometheusMetrics(
        active_counts, models, multiprocess_dir=environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    )
