"""Composition roots of the server processes: ``serve`` (API + worker + reaper) and
``worker``. Everything is built here from Settings and handed down."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelserve.blobs import open_blobs
from reelserve.cli.webhook_delivery import build_deliverer
from reelserve.core.ledger import Bucket
from reelserve.core.metrics import NO_METRICS, Metrics
from reelserve.core.ports import Blobs
from reelserve.core.render import Engine, Mode
from reelserve.core.wakeups import QUEUE
from reelserve.core.webhooks import WEBHOOKS
from reelserve.services.keys import create_key
from reelserve.services.reaper import run_reaper
from reelserve.services.retention import RetentionPolicy, run_retention
from reelserve.services.webhooks import run_deliverer
from reelserve.services.work import LocalCoordinator, WorkPolicy
from reelserve.settings import Settings
from reelserve.store import SqlStore, connect, upgrade
from reelserve.worker.inputs import FetchPolicy
from reelserve.worker.runner import OutputStore, Worker, WorkerConfig

if TYPE_CHECKING:
    from reelserve.engines.profiles import Profile
    from reelserve.observability.prometheus import PrometheusMetrics

log = logging.getLogger("reelserve")


def open_store(settings: Settings, *, migrate: bool = True, listen: bool = False) -> SqlStore:
    """The store; with ``listen`` on PostgreSQL, other processes' changes wake us too."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = connect(settings.db_url)
    if migrate:
        upgrade(engine)
    store = SqlStore(engine)
    if listen and engine.dialect.name == "postgresql":
        from reelserve.store.listener import PgListener

        PgListener(settings.db_url, store.wakeups).start()
    return store


@dataclass(frozen=True)
class LoadedEngines:
    engines: dict[Mode, Engine]
    random_weights: bool
    # Published in the worker's registration (see core.capabilities): audio per mode, and
    # the modes the profile names that cannot be served here, with why.
    capabilities: dict[str, Any] = field(default_factory=dict)


def load_engines(settings: Settings) -> LoadedEngines:
    """The engines of the profile's modes whose weights are here (never downloads)."""
    from reelserve.cli.engine_host import engines_in_child, runs_in_child

    if runs_in_child(settings):
        # The engine process opens the engines; what this worker can serve and with what
        # sound is read here from the profile and the models folder, without loading models.
        engines, random_weights = engines_in_child(settings)
        return LoadedEngines(dict(engines), random_weights, _capabilities(settings))
    if settings.profile == "fake":
        from reelserve.engines.fake import fake_engines

        return LoadedEngines(dict(fake_engines(settings.fake_steps, settings.fake_step_s)), True)
    from reelserve.engines import get_profile, open_profile

    opened = open_profile(get_profile(settings.profile), settings.models_dir)
    capabilities = _capability_table(opened.profile, opened.missing)
    return LoadedEngines(opened.engines, opened.profile.random_weights, capabilities)


def _capabilities(settings: Settings) -> dict[str, Any]:
    """What a worker publishes of its profile: audio per mode, and the modes it lacks."""
    if settings.profile == "fake":
        return {}
    from reelserve.engines import get_profile, unavailable_modes

    profile = get_profile(settings.profile)
    return _capability_table(profile, unavailable_modes(profile, settings.models_dir))


def _capability_table(profile: Profile, missing: Mapping[Mode, str]) -> dict[str, Any]:
    return {
        "audio": profile.audio_table(),
        "missing": {mode.value: reason for mode, reason in missing.items()},
    }


def build_worker(
    settings: Settings,
    store: SqlStore,
    engines: dict[Mode, Engine],
    random_weights: bool,
    *,
    metrics: Metrics = NO_METRICS,
    capabilities: dict[str, Any] | None = None,
) -> Worker:
    blobs = open_blobs(settings)

    def read_blob(key: str, dest: Path) -> Path:
        local = blobs.local_path(key)
        if local is not None:
            return local
        blobs.fetch_to(key, dest)
        return dest

    coordinator = LocalCoordinator(
        store,
        WorkPolicy(
            lease_s=settings.lease_s,
            retry_backoff_s=settings.retry_backoff_s,
            prices=settings.price_table,
            max_running_per_workspace=settings.max_running_per_workspace,
        ),
        metrics,
    )
    return Worker(
        coordinator,
        engines,
        OutputStore(save=blobs.put_file, delete=blobs.delete, read=read_blob),
        WorkerConfig(
            lease_s=settings.lease_s,
            poll_s=settings.worker_poll_s,
            fetch=FetchPolicy(
                timeout_s=settings.fetch_timeout_s, allow_private=settings.allow_private_urls
            ),
            profile=settings.profile,
            random_weights=random_weights,
            scratch_dir=settings.data_dir / "tmp",
            capabilities=capabilities or {},
        ),
        wakeups=store.wakeups,
    )


def build_metrics(store: SqlStore) -> PrometheusMetrics:
    """One process's metrics (multi-process when PROMETHEUS_MULTIPROC_DIR is set)."""
    import os

    from reelserve.models.registry import REGISTRY
    from reelserve.observability.prometheus import from_environment

    return from_environment(store.active_counts, REGISTRY, os.environ)


@dataclass(frozen=True)
class FirstStart:
    workspace: str
    key: str
    credits: int


def bootstrap(store: SqlStore, settings: Settings) -> FirstStart | None:
    """On an empty database: one workspace with some credits and a key to use at once."""
    if store.count_workspaces() > 0:
        return None
    new_key = create_key(store, "default", name="first start")
    workspace = store.find_workspace("default")
    assert workspace is not None
    store.grant(workspace.id, Bucket.PERMANENT, settings.initial_credits)
    return FirstStart(workspace="default", key=new_key.key, credits=settings.initial_credits)


@contextmanager
def background(
    store: SqlStore,
    settings: Settings,
    worker: Worker | None,
    metrics: Metrics = NO_METRICS,
    blobs: Blobs | None = None,
) -> Iterator[threading.Event]:
    """Run the reaper, the webhook deliverer, the retention job (and the embedded worker) in
    threads for the block's duration."""
    stop = threading.Event()
    blobs = blobs or open_blobs(settings)
    threads = [
        threading.Thread(
            target=run_reaper,
            args=(store, settings.reaper_interval_s, settings.retry_backoff_s, stop, metrics),
            name="reaper",
            daemon=True,
        ),
        threading.Thread(
            target=run_deliverer,
            args=(
                build_deliverer(store, settings, blobs),
                settings.webhook_poll_s,
                stop,
                lambda timeout: store.wakeups.wait(WEBHOOKS, timeout),
            ),
            name="webhooks",
            daemon=True,
        ),
    ]
    retention = RetentionPolicy(settings.output_retention_s, settings.upload_retention_s)
    if not retention.keeps_everything:
        threads.append(
            threading.Thread(
                target=run_retention,
                args=(
                    store,
                    blobs,
                    retention,
                    settings.retention_interval_s,
                    stop,
                ),
                name="retention",
                daemon=True,
            )
        )
    if worker is not None:
        threads.append(
            threading.Thread(target=worker.run, args=(stop,), name="worker", daemon=True)
        )
    for thread in threads:
        thread.start()
    try:
        yield stop
    finally:
        stop.set()
        store.wakeups.publish(QUEUE)  # an idle worker stops waiting for work at once
        store.wakeups.publish(WEBHOOKS)  # and so does the deliverer
        for thread in threads:
            thread.join(timeout=30)
