"""Concurrency on SQLite and PostgreSQL: 1,000 creates at once through the real HTTP API
against credits that cover exactly 100 of them; and cancel racing the worker's finish,
round after round, on the service layer."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from reelserve.api import create_app
from reelserve.core.errors import Conflict, LeaseLost
from reelserve.core.ledger import Bucket
from reelserve.core.ports import Caller, Workspace
from reelserve.core.status import Status
from reelserve.services import generations
from reelserve.services.keys import create_key
from reelserve.services.reaper import reap_once
from reelserve.services.submit import SubmitPolicy, Submitter
from reelserve.services.work import LocalCoordinator, WorkPolicy
from reelserve.settings import Settings
from reelserve.store import SqlStore, connect, upgrade
from tests.faults.invariants import check_invariants
from tests.faults.runs import record, run_count
from tests.live_service import serve_app

MODEL = "kling-ai/kling-v2.6"
BODY = {"prompt": "a heron taking off"}
CREATES = 1000
COVERED = 100
ROUNDS_ENV = "REELSERVE_RACE_ROUNDS"


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    engine = connect(database_url)
    upgrade(engine)
    yield SqlStore(engine)
    engine.dispose()


def _backend(store: SqlStore) -> str:
    return "sqlite" if store.engine.dialect.name == "sqlite" else "postgres"


def _submitter(store: SqlStore, settings: Settings) -> Submitter:
    policy = SubmitPolicy(settings.price_table, 3, 3600, 3600, 60, require_worker=False)
    return Submitter(store, policy, lambda url, field: None)


@pytest.mark.slow
def test_a_thousand_concurrent_creates_accept_exactly_what_the_credits_cover(
    store: SqlStore, database_url: str, tmp_path: Path
) -> None:
    # Per-key limits off (0): this test is about credits, not rate limits.
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        creates_per_minute=0,
        max_active_per_key=0,
    )
    price = _submitter(store, settings).prepare(MODEL, BODY, {}).price
    key = create_key(store, "lean").key
    workspace = store.find_workspace("lean")
    assert workspace is not None
    store.grant(workspace.id, Bucket.PERMANENT, COVERED * price)
    # A worker that serves the model (tasks stay queued: nothing here runs them).
    store.register_worker("wrk_stand_in", "stand-in", [MODEL], {})

    with serve_app(create_app(settings, store=store)) as base:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        retried: list[int] = []
        with httpx.Client(limits=limits, timeout=120) as http:

            def create(n: int) -> httpx.Response:
                # A dropped connection is retried with the same Idempotency-Key, as a
                # careful client does: it can never create the task twice.
                headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"create-{n}"}
                for attempt in range(5):
                    try:
                        return http.post(f"{base}/generation/{MODEL}", json=BODY, headers=headers)
                    except httpx.TransportError:
                        retried.append(n)
                        if attempt == 4:
                            raise
                raise AssertionError("unreachable")

            with ThreadPoolExecutor(max_workers=64) as pool:
                responses = list(pool.map(create, range(CREATES)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: COVERED, 402: CREATES - COVERED}, statuses
    refused = [r.json() for r in responses if r.status_code == 402]
    assert {body["code"] for body in refused} == {"VIDEO_GENERATION_INSUFFICIENT_CREDITS"}
    assert all(f"costs {price} credits" in body["message"] for body in refused)
    accepted = {r.json()["id"] for r in responses if r.status_code == 200}
    assert len(accepted) == COVERED
    assert store.raw_balances(workspace.id) == {Bucket.SUBSCRIPTION: 0, Bucket.PERMANENT: 0}
    tally = check_invariants(store, workspace.id, COVERED * price)
    assert tally.statuses == {"IN_QUEUE": COVERED}
    case = "1,000 concurrent creates, credits for 100"
    record(case, _backend(store), 0, tally, retried_after_a_dropped_connection=len(retried))


def test_cancel_racing_the_finish_ends_in_one_terminal_state_charged_right(
    store: SqlStore, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    submitter = _submitter(store, settings)
    work = LocalCoordinator(store, WorkPolicy(30.0, 0.0, settings.price_table))
    key = create_key(store, "racer")
    workspace = store.find_workspace("racer")
    assert workspace is not None
    caller = Caller(workspace, key.key_id)
    rounds = int(os.environ.get(ROUNDS_ENV, str(15 * run_count())))
    price = submitter.prepare(MODEL, BODY, {}).price
    store.grant(workspace.id, Bucket.PERMANENT, rounds * price)
    outcomes: Counter[str] = Counter()

    for round_ in range(rounds):
        gen, _ = submitter.submit(caller, MODEL, BODY)
        claimed_first = round_ % 2 == 1  # alternate: cancel while queued / while running
        final = _race(store, work, workspace, gen.id, claimed_first)
        outcomes[f"{final.value} ({'running' if claimed_first else 'queued'})"] += 1

    tally = check_invariants(store, workspace.id, rounds * price)
    assert sum(tally.statuses.values()) == rounds
    assert tally.statuses["COMPLETED"] * price == sum(
        e["amount"]
        for gen in store.list_for_workspace(workspace.id, None, rounds)
        for e in store.ledger_for(gen.id)
        if e["kind"] == "capture"
    )
    record("cancel racing complete (service layer)", _backend(store), 0, tally, **outcomes)


def _race(
    store: SqlStore, work: LocalCoordinator, workspace: Workspace, gen_id: str, claimed: bool
) -> Status:
    """A worker finishing (completing, or honouring a cancel it saw) races a cancel and a
    reaper tick; returns the task's final status after checking it against the cancel."""
    held = work.claim("wrk_a", [MODEL]) if claimed else None
    start = threading.Barrier(3)
    canceled: list[Status | None] = []

    def worker() -> None:
        start.wait()
        task = held or work.claim("wrk_a", [MODEL])
        if task is None:
            return  # the cancel won while the task was still queued
        try:
            if work.heartbeat(task, "wrk_a", 90).cancel_requested:
                work.canceled(task, "wrk_a")
            else:
                work.complete(task, "wrk_a", {"type": "video", "videos": []})
        except LeaseLost:
            pass

    def cancel() -> None:
        start.wait()
        try:
            canceled.append(generations.cancel(store, workspace, gen_id).status)
        except Conflict:
            canceled.append(None)

    def reaper() -> None:
        start.wait()
        reap_once(store, 0.0)

    threads = [threading.Thread(target=t) for t in (worker, cancel, reaper)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    final = store.get(gen_id)
    assert final is not None
    assert final.status in (Status.COMPLETED, Status.CANCELED), final
    if canceled == [None]:  # refused: the task had already finished
        assert final.status is Status.COMPLETED
    if canceled == [Status.CANCELED]:
        assert final.status is Status.CANCELED
    return final.status
