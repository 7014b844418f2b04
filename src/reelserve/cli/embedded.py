"""Composition roots of the server processes: ``serve`` (API + worker + reaper) and
``worker``. Everything is built here from Settings and handed down."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelserve.blobs import LocalBlobs
from reelserve.core.ledger import Bucket
from reelserve.core.ports import Blobs
from reelserve.core.render import Engine, Mode
from reelserve.core.wakeups import QUEUE
from reelserve.services.keys import create_key
from reelserve.services.reaper import run_reaper
from reelserve.services.work import LocalCoordinator, WorkPolicy
from reelserve.settings import Settings
from reelserve.store import SqlStore, connect, upgrade
from reelserve.worker.inputs import FetchPolicy
from reelserve.worker.runner import OutputStore, Worker, WorkerConfig

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
    if settings.profile == "fake":
        from reelserve.engines.fake import fake_engines

        return LoadedEngines(dict(fake_engines(settings.fake_steps, settings.fake_step_s)), True)
    from reelserve.engines import get_profile, open_profile

    opened = open_profile(get_profile(settings.profile), settings.models_dir)
    capabilities = {
        "audio": opened.profile.audio_table(),
        "missing": {mode.value: reason for mode, reason in opened.missing.items()},
    }
    return LoadedEngines(opened.engines, opened.profile.random_weights, capabilities)


def build_worker(
    settings: Settings,
    store: SqlStore,
    engines: dict[Mode, Engine],
    random_weights: bool,
    capabilities: dict[str, Any] | None = None,
) -> Worker:
    blobs: Blobs = LocalBlobs(settings.blobs_dir)

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
        ),
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
    store: SqlStore, settings: Settings, worker: Worker | None
) -> Iterator[threading.Event]:
    """Run the reaper (and the embedded worker) in threads for the block's duration."""
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=run_reaper,
            args=(store, settings.reaper_interval_s, settings.retry_backoff_s, stop),
            name="reaper",
            daemon=True,
        )
    ]
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
        for thread in threads:
            thread.join(timeout=30)
