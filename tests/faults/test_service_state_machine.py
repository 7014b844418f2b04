"""A Hypothesis state machine over the service layer (not just the store): create
(``services.submit``, with and without an idempotency key), claim, heartbeat, complete,
fail and canceled (``services.work.LocalCoordinator``), cancel
(``services.generations``), reap (``services.reaper``) and clock advances, in any order,
on SQLite and on PostgreSQL. After every step the shared invariants hold, and the fence
is exact: a worker's finishing call succeeds if and only if that worker still holds that
attempt of the task.

The clock moves through ``SqlStore.clock_offset_s`` (added to the database clock), so
leases and deadlines expire without sleeping.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import Engine

from reelserve.core.errors import Conflict, InsufficientCredits, LeaseLost
from reelserve.core.ledger import Bucket
from reelserve.core.ports import Caller
from reelserve.core.pricing import PriceTable
from reelserve.core.records import Generation
from reelserve.core.status import Status
from reelserve.services import generations
from reelserve.services.keys import create_key
from reelserve.services.reaper import reap_once
from reelserve.services.submit import SubmitPolicy, Submitter
from reelserve.services.work import LocalCoordinator, WorkPolicy
from reelserve.settings import Settings
from reelserve.store import SqlStore, connect, upgrade
from tests.faults.invariants import check_invariants

MODEL = "kling-ai/kling-v2.6"
LEASE_S = 60.0
DEADLINE_S = 3600.0
GRANTED = 200  # half subscription, half permanent: a few 5 s and 10 s tasks
EXAMPLES_ENV = "REELSERVE_MACHINE_EXAMPLES"


def _wipe(engine: Engine) -> None:
    """Empty every table (a fresh database per example, without re-running migrations)."""
    tables = sa.MetaData()
    tables.reflect(engine)
    with engine.begin() as conn:
        for table in reversed(tables.sorted_tables):
            if table.name != "alembic_version":
                conn.execute(table.delete())


class ServiceMachine(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        _wipe(engine)
        self.store = SqlStore(engine)
        key = create_key(self.store, "acme")
        workspace = self.store.find_workspace("acme")
        assert workspace is not None
        self.workspace = workspace
        self.store.grant(workspace.id, Bucket.SUBSCRIPTION, GRANTED // 2)
        self.store.grant(workspace.id, Bucket.PERMANENT, GRANTED // 2)
        # A worker serves the model (the clock moves, so "fresh" must outlast the run).
        self.store.register_worker("wrk_machine", "machine", [MODEL], {})
        prices: PriceTable = Settings().price_table
        self.submitter = Submitter(
            self.store,
            SubmitPolicy(prices, 2, DEADLINE_S, DEADLINE_S, 1e9, require_worker=True),
            lambda url, field: None,
        )
        self.caller = Caller(workspace, key.key_id)
        self.work = LocalCoordinator(self.store, WorkPolicy(LEASE_S, 0.0, prices))
        # Every claim ever handed out, stale ones included: (task as claimed, worker).
        self.holdings: dict[str, list[tuple[Generation, str]]] = defaultdict(list)
        self.completed: set[str] = set()
        self.idempotent: dict[str, tuple[str, int]] = {}  # key → (task, duration)

    # -- helpers ----------------------------------------------------------------------

    def _holding(self, gen_id: str, pick: int) -> tuple[Generation, str] | None:
        held = self.holdings.get(gen_id)
        return held[pick % len(held)] if held else None

    def _holds(self, gen: Generation, worker: str) -> bool:
        """Does ``worker`` still hold this attempt? (The fence ignores lease expiry until
        the reaper has acted: an expired lease nobody took over may still finish.)"""
        now = self.store.get(gen.id)
        assert now is not None
        return (now.status, now.attempt, now.lease_owner) == (
            Status.IN_PROGRESS,
            gen.attempt,
            worker,
        )

    def _fenced(self, gen: Generation, worker: str, call: Callable[[], Generation]) -> bool:
        """Run a finishing call; it must succeed exactly when the worker holds the task."""
        holds = self._holds(gen, worker)
        try:
            call()
        except LeaseLost:
            assert not holds, (gen.id, gen.attempt, worker)
            return False
        assert holds, (gen.id, gen.attempt, worker)
        return True

    # -- rules ------------------------------------------------------------------------

    @rule(
        target=tasks,
        duration=st.sampled_from([5, 10]),
        key=st.one_of(st.none(), st.sampled_from(["k1", "k2"])),
    )
    def create(self, duration: int, key: str | None) -> object:
        body = {"prompt": "a paper boat on a river", "duration": duration}
        try:
            gen, fresh = self.submitter.submit(self.caller, MODEL, body, idempotency_key=key)
        except InsufficientCredits:
            return multiple()
        except Conflict:
            assert key is not None
            assert self.idempotent[key][1] != duration  # the same key with another body
            return multiple()
        if key is not None:
            if not fresh:
                assert self.idempotent[key] == (gen.id, duration)
            self.idempotent[key] = (gen.id, duration)
        else:
            assert fresh
        return gen.id

    @rule(worker=st.sampled_from(["w1", "w2"]))
    def claim(self, worker: str) -> None:
        gen = self.work.claim(worker, [MODEL])
        if gen is not None:
            assert gen.status is Status.IN_PROGRESS
            assert gen.lease_owner == worker
            self.holdings[gen.id].append((gen, worker))

    @rule(gen_id=tasks, pick=st.integers(0, 3), progress=st.integers(0, 100))
    def heartbeat(self, gen_id: str, pick: int, progress: int) -> None:
        held = self._holding(gen_id, pick)
        if held is not None:
            gen, worker = held
            holds = self._holds(gen, worker)
            try:
                beat = self.work.heartbeat(gen, worker, progress)
            except LeaseLost:
                assert not holds
                return
            assert holds
            now = self.store.get(gen_id)
            assert now is not None
            assert beat.cancel_requested == now.cancel_requested

    @rule(gen_id=tasks, pick=st.integers(0, 3))
    def complete(self, gen_id: str, pick: int) -> None:
        held = self._holding(gen_id, pick)
        if held is None:
            return
        gen, worker = held
        data = {"type": "video", "n": 1, "videos": [{"key": f"outputs/{gen.id}.mp4"}]}
        if self._fenced(gen, worker, lambda: self.work.complete(gen, worker, data)):
            assert gen_id not in self.completed
            self.completed.add(gen_id)

    @rule(gen_id=tasks, pick=st.integers(0, 3), retry=st.booleans())
    def fail(self, gen_id: str, pick: int, retry: bool) -> None:
        held = self._holding(gen_id, pick)
        if held is not None:
            gen, worker = held
            self._fenced(
                gen,
                worker,
                lambda: self.work.fail(gen, worker, "VIDEO_GENERATION_FAILED", "x", retry=retry),
            )

    @rule(gen_id=tasks, pick=st.integers(0, 3))
    def canceled(self, gen_id: str, pick: int) -> None:
        held = self._holding(gen_id, pick)
        now = self.store.get(gen_id)
        if held is not None and now is not None and now.cancel_requested:
            gen, worker = held
            self._fenced(gen, worker, lambda: self.work.canceled(gen, worker))

    @rule(gen_id=tasks)
    def cancel(self, gen_id: str) -> None:
        before = self.store.get(gen_id)
        assert before is not None
        try:
            after = generations.cancel(self.store, self.workspace, gen_id)
        except Conflict:
            assert before.status.terminal
            return
        assert not before.status.terminal
        if before.status is Status.IN_QUEUE:
            assert after.status is Status.CANCELED
        else:
            assert after.status is Status.IN_PROGRESS
            assert after.cancel_requested

    @rule()
    def reap(self) -> None:
        reap_once(self.store, 0.0)

    # Mostly past a lease; now and then past every deadline.
    @rule(seconds=st.sampled_from([1.0, LEASE_S + 1, LEASE_S + 1, LEASE_S + 1, DEADLINE_S + 1]))
    def advance_clock(self, seconds: float) -> None:
        self.store.clock_offset_s += seconds

    @rule(worker=st.sampled_from(["w1", "w2"]))
    def lease_expires_and_another_claim_takes_over(self, worker: str) -> None:
        """The common fault in one step: a worker goes silent past its lease, the reaper
        requeues its task, and a claim (maybe by the same worker, restarted) takes it."""
        self.advance_clock(LEASE_S + 1)
        self.reap()
        self.claim(worker)

    @rule(gen_id=tasks)
    def the_first_claim_completes_late(self, gen_id: str) -> None:
        self.complete(gen_id, 0)

    @invariant()
    def invariants_hold(self) -> None:
        check_invariants(self.store, self.workspace.id, GRANTED, settled=False)
        for gen_id in self.completed:
            now = self.store.get(gen_id)
            assert now is not None
            assert now.status is Status.COMPLETED  # a completion is never undone


def test_service_state_machine(database_url: str) -> None:
    engine = connect(database_url)
    upgrade(engine)
    try:
        run_state_machine_as_test(
            lambda: ServiceMachine(engine),
            settings=settings(
                max_examples=int(os.environ.get(EXAMPLES_ENV, "25")),
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        engine.dispose()
