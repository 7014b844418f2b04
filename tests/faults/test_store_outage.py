"""The database goes away exactly while a worker finishes a task (its complete call, and
the fail call that follows, cannot reach it): the worker must live on, and once the
database is back the reaper and the same worker finish the task once.

In-process worker (the real Worker, coordinator and store) on a private PostgreSQL
cluster that the engine stops at the end of denoising; the engine is the fake one, which
stands in for a GPU model (none can run here).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reelserve.cli.embedded import build_worker
from reelserve.core.ledger import Bucket
from reelserve.core.ports import Caller
from reelserve.core.render import Mode, ProgressFn, RenderJob, Rendition
from reelserve.engines.fake import FakeEngine
from reelserve.services.keys import create_key
from reelserve.services.reaper import reap_once
from reelserve.services.submit import SubmitPolicy, Submitter
from reelserve.settings import Settings
from reelserve.store import SqlStore, connect, upgrade
from tests.faults.invariants import check_invariants
from tests.faults.pg_cluster import PgCluster
from tests.faults.runs import record
from tests.faults.site import MODEL

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class StopsTheDatabase:
    """The fake engine, stopping the database as its last denoising step ends (once)."""

    def __init__(self, cluster: PgCluster) -> None:
        self.inner = FakeEngine(steps=3)
        self.name = "fake"
        self.random_weights = True
        self.cluster = cluster
        self.stopped = False

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition:
        rendition = self.inner.render(job, progress)
        if not self.stopped:
            self.stopped = True
            self.cluster.stop("immediate")
        return rendition


def test_a_worker_outlives_a_database_outage_while_finishing(
    cluster: PgCluster, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=cluster.url, lease_s=1.0, retry_backoff_s=0.1
    )
    engine = connect(cluster.url)
    upgrade(engine)
    store = SqlStore(engine)
    key = create_key(store, "acme")
    workspace = store.find_workspace("acme")
    assert workspace is not None
    store.grant(workspace.id, Bucket.PERMANENT, 100)
    submitter = Submitter(
        store,
        SubmitPolicy(settings.price_table, 3, 3600, 60, 60, require_worker=False),
        lambda url, field: None,
    )
    gen, _ = submitter.submit(Caller(workspace, key.key_id), MODEL, {"prompt": "a red kite"})
    flaky = StopsTheDatabase(cluster)
    worker = build_worker(settings, store, {mode: flaky for mode in Mode}, True)

    worker.run_once()  # complete and fail both hit a stopped database: nothing escapes
    assert flaky.stopped
    cluster.start()
    deadline = time.monotonic() + 60
    while (now := store.get(gen.id)) is not None and not now.status.terminal:
        assert time.monotonic() < deadline, now
        reap_once(store, settings.retry_backoff_s)
        worker.run_once()
        time.sleep(0.1)
    assert now is not None
    assert (now.status.value, now.attempt) == ("COMPLETED", 2)
    tally = check_invariants(store, workspace.id, 100, outputs_dir=settings.blobs_dir / "outputs")
    assert tally.lost == tally.duplicated == tally.overcharged == 0
    record("database outage while finishing", "postgres (private, stopped)", 0, tally)
    engine.dispose()
