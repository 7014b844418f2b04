"""A Hypothesis state machine over the store: create, claim, heartbeat, cancel, reap,
complete, fail and lease expiry in any order; status, fencing and the ledger hold."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from reelserve.core.errors import Conflict, InsufficientCredits, LeaseLost
from reelserve.core.ids import new_generation_id
from reelserve.core.ledger import Bucket
from reelserve.core.ports import NewGeneration
from reelserve.core.status import Status
from reelserve.store import SqlStore, connect, upgrade

MODEL = "kling-ai/kling-v2.6"
GRANTED = 200


class StoreMachine(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        engine = connect(f"sqlite:///{Path(self.dir.name) / 'm.db'}")
        upgrade(engine)
        self.store = SqlStore(engine)
        ws = self.store.ensure_workspace("acme")
        self.ws = ws.id
        self.store.grant(ws.id, Bucket.SUBSCRIPTION, GRANTED // 2)
        self.store.grant(ws.id, Bucket.PERMANENT, GRANTED // 2)
        self.completed: set[str] = set()
        # (generation id, attempt) → worker currently believed to hold it
        self.leases: dict[str, tuple[int, str]] = {}

    def teardown(self) -> None:
        self.store.engine.dispose()
        self.dir.cleanup()

    @rule(target=tasks, price=st.integers(1, 90))
    def create(self, price: int) -> str:
        gen_id = new_generation_id()
        with contextlib.suppress(InsufficientCredits):
            self.store.submit(
                NewGeneration(gen_id, self.ws, MODEL, "text-to-video", {}, {}, price, 2, 3600),
                None,
            )
        return gen_id

    @rule(worker=st.sampled_from(["w1", "w2"]), expired=st.booleans())
    def claim(self, worker: str, expired: bool) -> None:
        # An already-expired lease stands in for the clock moving past it.
        gen = self.store.claim(worker, [MODEL], -1.0 if expired else 60.0)
        if gen is not None:
            assert gen.status is Status.IN_PROGRESS
            self.leases[gen.id] = (gen.attempt, worker)

    @rule(gen_id=tasks, progress=st.integers(0, 100))
    def heartbeat(self, gen_id: str, progress: int) -> None:
        if gen_id in self.leases:
            attempt, worker = self.leases[gen_id]
            try:
                self.store.heartbeat(gen_id, attempt, worker, progress, 60.0)
            except LeaseLost:
                self.leases.pop(gen_id)

    @rule(gen_id=tasks, charge=st.integers(0, 100), stale=st.booleans())
    def complete(self, gen_id: str, charge: int, stale: bool) -> None:
        if gen_id not in self.leases:
            return
        attempt, worker = self.leases[gen_id]
        try:
            self.store.complete(gen_id, attempt - 1 if stale else attempt, worker, {}, charge)
        except LeaseLost:
            return
        assert not stale
        assert gen_id not in self.completed
        self.completed.add(gen_id)
        self.leases.pop(gen_id)

    @rule(gen_id=tasks, retry=st.booleans())
    def fail(self, gen_id: str, retry: bool) -> None:
        if gen_id in self.leases:
            attempt, worker = self.leases.pop(gen_id)
            with contextlib.suppress(LeaseLost):
                self.store.fail(
                    gen_id, attempt, worker, "VIDEO_GENERATION_FAILED", "x", 0.0 if retry else None
                )

    @rule(gen_id=tasks)
    def cancel(self, gen_id: str) -> None:
        if self.store.get(gen_id) is None:
            return
        with contextlib.suppress(Conflict):
            self.store.cancel(self.ws, gen_id)

    @rule(gen_id=tasks)
    def finish_canceled(self, gen_id: str) -> None:
        gen = self.store.get(gen_id)
        if gen is not None and gen.cancel_requested and gen_id in self.leases:
            attempt, worker = self.leases.pop(gen_id)
            with contextlib.suppress(LeaseLost):
                self.store.finish_canceled(gen_id, attempt, worker)

    @rule()
    def reap(self) -> None:
        self.store.reap(0.0)

    @invariant()
    def ledger_equals_buckets(self) -> None:
        sums = self.store.ledger_sums(self.ws)
        assert sums == self.store.raw_balances(self.ws)
        assert all(v >= 0 for v in sums.values())

    @invariant()
    def every_credit_is_accounted_for(self) -> None:
        held = captured = 0
        for gen in self.store.list_for_workspace(self.ws, None, 1000):
            entries = self.store.ledger_for(gen.id)
            amount = {
                kind: sum(e["amount"] for e in entries if e["kind"] == kind)
                for kind in ("reserve", "capture", "release")
            }
            if gen.status.terminal:
                # Nothing stays reserved on a finished task.
                assert amount["reserve"] == amount["capture"] + amount["release"]
                assert gen.usage.total == amount["capture"]
                if gen.status is not Status.COMPLETED:
                    assert amount["capture"] == 0
            else:
                assert amount["capture"] == amount["release"] == 0
                held += amount["reserve"]
            captured += amount["capture"]
        balance = sum(self.store.raw_balances(self.ws).values())
        assert balance + held + captured == GRANTED


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
