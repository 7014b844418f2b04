"""Fair sharing inside the claim: per-workspace running caps and priorities, on SQLite and
PostgreSQL, including concurrent claimers that must never exceed a cap."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from reelserve.core.errors import NotFound
from reelserve.core.ids import new_generation_id
from reelserve.core.ports import NewGeneration, Workspace
from reelserve.core.records import Generation
from reelserve.core.status import Status
from reelserve.store import SqlStore
from tests.conftest import funded

MODEL = "kling-ai/kling-v2.6"


def submit(store: SqlStore, workspace: Workspace) -> Generation:
    gen, _ = store.submit(
        NewGeneration(
            id=new_generation_id(),
            workspace_id=workspace.id,
            model=MODEL,
            mode="text-to-video",
            input={"prompt": "a cat"},
            plan={},
            price=1,
            max_attempts=2,
            deadline_s=3600.0,
        ),
        None,
    )
    return gen


def claim(store: SqlStore, default_cap: int | None = None) -> Generation | None:
    return store.claim("w1", [MODEL], 30, default_max_running=default_cap)


def test_cap_of_one_lets_the_other_workspace_go_first(store: SqlStore) -> None:
    a, b = funded(store, "a", permanent=100), funded(store, "b", permanent=100)
    store.set_sharing("a", max_running=1)
    a1, a2, b1 = submit(store, a), submit(store, a), submit(store, b)

    first, second = claim(store), claim(store)
    assert (first and first.id, second and second.id) == (a1.id, b1.id)
    assert claim(store) is None  # a2 waits: a is at its cap
    waiting = store.get(a2.id)
    assert waiting is not None
    assert waiting.status is Status.IN_QUEUE

    store.complete(a1.id, 1, "w1", {"videos": []}, 1)
    third = claim(store)
    assert third is not None
    assert third.id == a2.id


def test_server_default_cap_applies_unless_the_workspace_sets_its_own(store: SqlStore) -> None:
    a, b = funded(store, "a", permanent=100), funded(store, "b", permanent=100)
    for _ in range(3):
        submit(store, a)
        submit(store, b)
    store.set_sharing("b", max_running=0)  # 0: no cap for b, whatever the default
    claimed = Counter()
    while (gen := claim(store, default_cap=2)) is not None:
        claimed[gen.workspace_id] += 1
    assert claimed == {a.id: 2, b.id: 3}


def test_priorities_order_claims_fifo_within_a_priority(store: SqlStore) -> None:
    low, high = funded(store, "low", permanent=100), funded(store, "high", permanent=100)
    store.set_sharing("high", priority=5)
    low1 = submit(store, low)
    high1 = submit(store, high)
    low2 = submit(store, low)
    high2 = submit(store, high)

    assert store.get(high2.id).queue_position == 1  # type: ignore[union-attr]
    assert store.get(low1.id).queue_position == 2  # type: ignore[union-attr]
    order = []
    while (gen := claim(store)) is not None:
        order.append(gen.id)
    assert order == [high1.id, high2.id, low1.id, low2.id]


def test_sharing_settings_are_listed_with_counts(store: SqlStore) -> None:
    a = funded(store, "a", permanent=100)
    funded(store, "b", permanent=100)
    submit(store, a)
    submit(store, a)
    claim(store)
    shown = store.set_sharing("a", max_running=3, priority=2)
    assert (shown.max_running, shown.priority, shown.queued, shown.running) == (3, 2, 1, 1)
    listing = store.list_sharing()
    assert [s.name for s in listing] == ["a", "b"]  # highest priority first
    assert store.clear_max_running("a").max_running is None
    with pytest.raises(NotFound):
        store.set_sharing("nobody", priority=1)


def claim_together(store: SqlStore, claimers: int, tries: int) -> list[Generation]:
    """``claimers`` threads released at once, each claiming ``tries`` times."""
    barrier = threading.Barrier(claimers)
    claimed: list[Generation] = []
    lock = threading.Lock()

    def claimer(worker: str) -> None:
        barrier.wait()
        for _ in range(tries):
            gen = store.claim(worker, [MODEL], 30)
            if gen is not None:
                with lock:
                    claimed.append(gen)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return claimed


def test_concurrent_claimers_never_exceed_the_cap(store: SqlStore) -> None:
    capped, free = funded(store, "capped", permanent=1000), funded(store, "free", permanent=1000)
    store.set_sharing("capped", max_running=2)
    capped_tasks = {submit(store, capped).id for _ in range(12)}
    free_tasks = {submit(store, free).id for _ in range(6)}
    done: set[str] = set()

    for _round in range(4):
        claimed = claim_together(store, claimers=6, tries=4)
        running = store.list_for_workspace(capped.id, [Status.IN_PROGRESS], 100)
        assert len(running) <= 2
        assert len({gen.id for gen in claimed}) == len(claimed)  # nothing claimed twice
        for gen in running:  # free the capped workspace's places for the next round
            store.complete(gen.id, gen.attempt, gen.lease_owner or "", {"videos": []}, 1)
            done.add(gen.id)
    assert len(done) >= 6  # the cap holds, yet the capped workspace keeps making progress
    assert done <= capped_tasks
    free_running = store.list_for_workspace(free.id, [Status.IN_PROGRESS], 100)
    assert {gen.id for gen in free_running} == free_tasks
