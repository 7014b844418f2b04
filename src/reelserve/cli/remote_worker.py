"""Composition root of a remote worker (``reelserve worker --api-url URL``): engines here,
everything else over the API's internal routes. No database or blob-store settings."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping
from typing import Any

from reelserve.cli.embedded import load_engines
from reelserve.core.render import Engine, Mode
from reelserve.core.wakeups import QUEUE
from reelserve.settings import Settings
from reelserve.worker.inputs import FetchPolicy
from reelserve.worker.remote import HttpCoordinator, WorkerRefused
from reelserve.worker.runner import Worker, WorkerConfig

log = logging.getLogger("reelserve")


def build_remote_worker(
    settings: Settings,
    engines: dict[Mode, Engine],
    random_weights: bool,
    capabilities: Mapping[str, Any] | None = None,
) -> Worker:
    assert settings.api_url is not None
    assert settings.worker_token is not None
    coordinator = HttpCoordinator(settings.api_url, settings.worker_token)
    return Worker(
        coordinator,
        engines,
        coordinator.files(),
        WorkerConfig(
            lease_s=settings.lease_s,
            # The claim itself waits on the server for work; no pause between claims.
            poll_s=0.0,
            fetch=FetchPolicy(
                timeout_s=settings.fetch_timeout_s, allow_private=settings.allow_private_urls
            ),
            profile=settings.profile,
            random_weights=random_weights,
            scratch_dir=settings.data_dir / "tmp",
            capabilities=capabilities or {},
        ),
    )


def run_remote_worker(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT (the claim being waited on ends first)."""
    # One line per heartbeat would drown the worker's own log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    loaded = load_engines(settings)
    worker = build_remote_worker(
        settings, loaded.engines, loaded.random_weights, loaded.capabilities
    )
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stop.set()
        worker.wakeups.publish(QUEUE)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        worker.run(stop)
    except WorkerRefused as exc:
        log.error("the API refused this worker: %s", exc)
        raise SystemExit(1) from None
