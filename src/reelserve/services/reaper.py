"""The reaper: expired leases go back to the queue with backoff, or fail when out of
attempts or time, releasing their reserve."""

from __future__ import annotations

import logging
import threading

from reelserve.core.metrics import NO_METRICS, Metrics
from reelserve.core.ports import ReapReport, Store

log = logging.getLogger(__name__)


def reap_once(store: Store, backoff_s: float, metrics: Metrics = NO_METRICS) -> ReapReport:
    report = store.reap(backoff_s)
    for gen in report.ended:
        metrics.task_ended(gen)
    if report.requeued or report.timed_out or report.canceled:
        log.info(
            "reaper: requeued=%d timed_out=%d canceled=%d",
            report.requeued,
            report.timed_out,
            report.canceled,
        )
    return report


def run_reaper(
    store: Store,
    interval_s: float,
    backoff_s: float,
    stop: threading.Event,
    metrics: Metrics = NO_METRICS,
) -> None:
    while not stop.wait(interval_s):
        try:
            reap_once(store, backoff_s, metrics)
        except Exception:
            # A database hiccup must not kill the reaper; the next tick tries again.
            log.exception("reaper tick failed")
