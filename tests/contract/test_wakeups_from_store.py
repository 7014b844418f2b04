"""The store wakes waiters after each commit: in-process on any database, and across
processes through LISTEN/NOTIFY on PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from reelserve.core.errors import InsufficientCredits
from reelserve.core.ids import new_generation_id
from reelserve.core.ports import NewGeneration
from reelserve.core.wakeups import QUEUE, Wakeups, task_channel
from reelserve.store import SqlStore, connect, upgrade
from reelserve.store.listener import PgListener
from tests.conftest import fresh_postgres_url, funded

MODEL = "kling-ai/kling-v2.6"


def _submit_later(store: SqlStore, workspace_id: str, delay: float = 0.1) -> str:
    gen_id = new_generation_id()
    new = NewGeneration(gen_id, workspace_id, MODEL, "text-to-video", {}, {}, 20, 2, 3600)

    def submit() -> None:
        with contextlib.suppress(InsufficientCredits):
            store.submit(new, None)

    threading.Timer(delay, submit).start()
    return gen_id


def test_submit_wakes_a_waiting_worker_in_process(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    _submit_later(store, ws.id)
    started = time.monotonic()
    assert store.wakeups.wait(QUEUE, 5.0)
    assert time.monotonic() - started < 2
    assert store.claim("w1", [MODEL], 30) is not None


def test_a_failed_transaction_wakes_nobody(store: SqlStore) -> None:
    ws = funded(store, permanent=5)  # too little: the submit rolls back
    _submit_later(store, ws.id)
    assert not store.wakeups.wait(QUEUE, 0.5)


@pytest.fixture
def pg_pair() -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one PostgreSQL schema, as two processes would have."""
    for url in fresh_postgres_url():
        engine_a, engine_b = connect(url), connect(url)
        upgrade(engine_a)
        store_b = SqlStore(engine_b, Wakeups())
        listener = PgListener(url, store_b.wakeups).start()
        assert listener.listening.wait(10)
        try:
            yield SqlStore(engine_a, Wakeups()), store_b
        finally:
            listener.stop()
            engine_a.dispose()
            engine_b.dispose()


@pytest.mark.postgres
def test_notify_reaches_another_process(pg_pair: tuple[SqlStore, SqlStore]) -> None:
    api_side, worker_side = pg_pair
    ws = funded(api_side, permanent=100)
    gen_id = _submit_later(api_side, ws.id)
    started = time.monotonic()
    assert worker_side.wakeups.wait(QUEUE, 5.0)
    assert time.monotonic() - started < 2
    claimed = worker_side.claim("w1", [MODEL], 30)
    assert claimed is not None
    assert claimed.id == gen_id
    # The API side's stream of this task hears about the claim.
    woken: list[bool] = []
    waiter = threading.Thread(
        target=lambda: woken.append(api_side.wakeups.wait(task_channel(gen_id), 5.0))
    )
    listener = PgListener(
        str(api_side.engine.url.render_as_string(hide_password=False)), api_side.wakeups
    ).start()
    try:
        assert listener.listening.wait(10)
        waiter.start()
        time.sleep(0.05)
        worker_side.heartbeat(gen_id, 1, "w1", 40, 30)
        waiter.join(5)
    finally:
        listener.stop()
    assert woken == [True]
