"""The store contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from reelserve.core.errors import (
    Conflict,
    InsufficientCredits,
    LeaseLost,
    NotFound,
    RateLimited,
)
from reelserve.core.ids import new_generation_id
from reelserve.core.ledger import Bucket, Split
from reelserve.core.ports import IdempotencyClaim, NewGeneration
from reelserve.core.status import Status
from reelserve.store import SqlStore
from tests.conftest import assert_ledger_balanced, funded

MODEL = "kling-ai/kling-v2.6"


def new(
    workspace_id: str, price: int = 20, *, max_attempts: int = 2, deadline_s: float = 3600.0
) -> NewGeneration:
    return NewGeneration(
        id=new_generation_id(),
        workspace_id=workspace_id,
        model=MODEL,
        mode="text-to-video",
        input={"prompt": "a cat"},
        plan={},
        price=price,
        max_attempts=max_attempts,
        deadline_s=deadline_s,
    )


def test_submit_reserves_subscription_first_and_records_usage(store: SqlStore) -> None:
    ws = funded(store, subscription=15, permanent=30)
    gen, created = store.submit(new(ws.id, 20), None)
    assert created
    assert gen.status is Status.IN_QUEUE
    assert gen.reserved == Split(15, 5)
    assert gen.usage == Split(15, 5)
    assert gen.queue_position == 0
    balances = store.balances(ws.id)
    assert (balances.subscription, balances.permanent) == (0, 25)
    assert_ledger_balanced(store, ws.id)


def test_submit_short_of_credits_stores_nothing(store: SqlStore) -> None:
    ws = funded(store, permanent=19)
    with pytest.raises(InsufficientCredits, match="costs 20 credits"):
        store.submit(new(ws.id, 20), None)
    assert store.list_for_workspace(ws.id, None, 10) == []
    assert store.raw_balances(ws.id)[Bucket.PERMANENT] == 19
    assert_ledger_balanced(store, ws.id)


def test_expired_subscription_is_not_spent(store: SqlStore) -> None:
    ws = funded(store, permanent=5)
    store.grant(ws.id, Bucket.SUBSCRIPTION, 100, period_end=time.time() - 1)
    assert store.balances(ws.id).subscription == 0
    with pytest.raises(InsufficientCredits):
        store.submit(new(ws.id, 20), None)


def test_new_period_does_not_roll_over(store: SqlStore) -> None:
    ws = funded(store, subscription=50)
    store.grant(ws.id, Bucket.SUBSCRIPTION, 30, period_end=time.time() + 86400)
    assert store.balances(ws.id).subscription == 30
    assert_ledger_balanced(store, ws.id)


def test_queue_positions_follow_creation_order(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    ids = [store.submit(new(ws.id), None)[0].id for _ in range(3)]
    positions = [store.get(i).queue_position for i in ids]  # type: ignore[union-attr]
    assert positions == [0, 1, 2]
    store.claim("w1", [MODEL], 30)
    assert store.get(ids[2]).queue_position == 1  # type: ignore[union-attr]


def test_idempotency_same_body_returns_first_task_and_charges_once(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    claim = IdempotencyClaim(key="k1", request_hash="h1", ttl_s=3600)
    first, created = store.submit(new(ws.id), claim)
    again, created_again = store.submit(new(ws.id), claim)
    assert created
    assert not created_again
    assert again.id == first.id
    assert store.balances(ws.id).permanent == 80
    with pytest.raises(Conflict, match="different body"):
        store.submit(new(ws.id), IdempotencyClaim(key="k1", request_hash="h2", ttl_s=3600))


def test_idempotency_key_expires(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    first, _ = store.submit(new(ws.id), IdempotencyClaim("k", "h", ttl_s=0.0))
    second, created = store.submit(new(ws.id), IdempotencyClaim("k", "h", ttl_s=3600))
    assert created
    assert second.id != first.id


def test_claim_heartbeat_complete_captures(store: SqlStore) -> None:
    ws = funded(store, subscription=10, permanent=30)
    gen, _ = store.submit(new(ws.id, 40), None)
    claimed = store.claim("w1", [MODEL], 30)
    assert claimed is not None
    assert claimed.id == gen.id
    assert (claimed.status, claimed.attempt) == (Status.IN_PROGRESS, 1)
    assert store.claim("w2", [MODEL], 30) is None
    beat = store.heartbeat(gen.id, 1, "w1", 40, 30)
    assert not beat.cancel_requested
    done = store.complete(gen.id, 1, "w1", {"videos": []}, 25)
    assert done.status is Status.COMPLETED
    assert done.progress == 100
    assert done.usage == Split(10, 15)
    assert store.balances(ws.id).total == 15
    kinds = sorted((e["kind"], e["bucket"], e["amount"]) for e in store.ledger_for(gen.id))
    assert kinds == [
        ("capture", "permanent", 15),
        ("capture", "subscription", 10),
        ("release", "permanent", 15),
        ("reserve", "permanent", 30),
        ("reserve", "subscription", 10),
    ]
    assert_ledger_balanced(store, ws.id)


def test_claim_only_for_served_models(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    store.submit(new(ws.id), None)
    assert store.claim("w1", ["other/model"], 30) is None
    assert store.claim("w1", [MODEL], 30) is not None


def test_fencing_refuses_stale_attempts_and_other_workers(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    gen, _ = store.submit(new(ws.id), None)
    store.claim("w1", [MODEL], 30)
    with pytest.raises(LeaseLost):
        store.heartbeat(gen.id, 1, "intruder", 10, 30)
    with pytest.raises(LeaseLost):
        store.complete(gen.id, 2, "w1", {}, 20)
    store.complete(gen.id, 1, "w1", {}, 20)
    with pytest.raises(LeaseLost):
        store.complete(gen.id, 1, "w1", {}, 20)
    with pytest.raises(LeaseLost):
        store.fail(gen.id, 1, "w1", "VIDEO_GENERATION_FAILED", "x")
    assert store.balances(ws.id).permanent == 80
    assert_ledger_balanced(store, ws.id)


def test_reaper_requeues_expired_lease_then_times_out(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    gen, _ = store.submit(new(ws.id, max_attempts=2), None)
    store.claim("w1", [MODEL], 0.05)
    time.sleep(0.1)
    report = store.reap(backoff_s=0.0)
    assert report.requeued == 1
    assert store.get(gen.id).status is Status.IN_QUEUE  # type: ignore[union-attr]
    # The worker that lost the lease can no longer finish.
    with pytest.raises(LeaseLost):
        store.complete(gen.id, 1, "w1", {}, 20)
    again = store.claim("w2", [MODEL], 0.05)
    assert again is not None
    assert again.attempt == 2
    time.sleep(0.1)
    assert store.reap(backoff_s=0.0).timed_out == 1
    final = store.get(gen.id)
    assert final is not None
    assert final.status is Status.FAILED
    assert final.error_code == "VIDEO_GENERATION_TIMEOUT"
    assert final.usage == Split(0, 0)
    assert store.balances(ws.id).permanent == 100
    assert_ledger_balanced(store, ws.id)


def test_retry_backoff_delays_the_next_claim(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    gen, _ = store.submit(new(ws.id, max_attempts=3), None)
    store.claim("w1", [MODEL], 30)
    store.fail(gen.id, 1, "w1", "VIDEO_GENERATION_FAILED", "boom", retry_in_s=0.3)
    assert store.claim("w1", [MODEL], 30) is None
    time.sleep(0.35)
    assert store.claim("w1", [MODEL], 30) is not None


def test_queued_task_past_its_deadline_fails_and_releases(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    gen, _ = store.submit(new(ws.id, deadline_s=0.01), None)
    time.sleep(0.05)
    assert store.claim("w1", [MODEL], 30) is None
    assert store.reap(0.0).timed_out == 1
    assert store.get(gen.id).status is Status.FAILED  # type: ignore[union-attr]
    assert store.balances(ws.id).permanent == 100


def test_cancel_queued_releases_at_once(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    gen, _ = store.submit(new(ws.id), None)
    canceled = store.cancel(ws.id, gen.id)
    assert canceled.status is Status.CANCELED
    assert canceled.usage == Split(0, 0)
    assert store.balances(ws.id).permanent == 100
    with pytest.raises(Conflict) as info:
        store.cancel(ws.id, gen.id)
    assert info.value.record is not None
    assert info.value.record["status"] == "CANCELED"
    assert_ledger_balanced(store, ws.id)


def test_cancel_running_sets_flag_seen_by_heartbeat(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    gen, _ = store.submit(new(ws.id), None)
    store.claim("w1", [MODEL], 30)
    assert store.cancel(ws.id, gen.id).status is Status.IN_PROGRESS
    assert store.heartbeat(gen.id, 1, "w1", 50, 30).cancel_requested
    done = store.finish_canceled(gen.id, 1, "w1")
    assert done.status is Status.CANCELED
    assert store.balances(ws.id).permanent == 100


def test_cancel_of_another_workspace_is_not_found(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    other = funded(store, "other")
    gen, _ = store.submit(new(ws.id), None)
    with pytest.raises(NotFound):
        store.cancel(other.id, gen.id)


def test_reaper_finishes_cancel_of_a_dead_worker(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    gen, _ = store.submit(new(ws.id), None)
    store.claim("w1", [MODEL], 0.05)
    store.cancel(ws.id, gen.id)
    time.sleep(0.1)
    assert store.reap(0.0).canceled == 1
    assert store.get(gen.id).status is Status.CANCELED  # type: ignore[union-attr]
    assert store.balances(ws.id).permanent == 100


def test_events_follow_every_change_in_order(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    gen, _ = store.submit(new(ws.id), None)
    store.claim("w1", [MODEL], 30)
    store.heartbeat(gen.id, 1, "w1", 30, 30)
    store.heartbeat(gen.id, 1, "w1", 30, 30)  # no change, no event
    store.heartbeat(gen.id, 1, "w1", 10, 30)  # progress never goes back
    store.complete(gen.id, 1, "w1", {"videos": []}, 20)
    events = store.events_after(gen.id, 0)
    assert [(e.status.value, e.snapshot["progress"]) for e in events] == [
        ("IN_QUEUE", 0),
        ("IN_PROGRESS", 0),
        ("IN_PROGRESS", 30),
        ("COMPLETED", 100),
    ]
    assert [e.seq for e in store.events_after(gen.id, events[1].seq)] == [
        events[2].seq,
        events[3].seq,
    ]
    assert events[0].snapshot["id"] == gen.id


def test_concurrent_creates_never_overdraw(store: SqlStore) -> None:
    """45 credits and twelve simultaneous 20-credit creates: exactly two are accepted."""
    ws = funded(store, permanent=45)
    results: list[str] = []
    barrier = threading.Barrier(12)

    def attempt() -> None:
        barrier.wait()
        try:
            store.submit(new(ws.id, 20), None)
            results.append("ok")
        except InsufficientCredits:
            results.append("short")

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 2
    assert results.count("short") == 10
    assert store.balances(ws.id).permanent == 5
    assert_ledger_balanced(store, ws.id)


def test_concurrent_claims_hand_each_task_to_one_worker(store: SqlStore) -> None:
    ws = funded(store, permanent=1000)
    for _ in range(10):
        store.submit(new(ws.id), None)
    claimed: list[str] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        while (gen := store.claim(worker, [MODEL], 30)) is not None:
            with lock:
                claimed.append(gen.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 10
    assert len(set(claimed)) == 10


def test_workers_register_and_age_out(store: SqlStore) -> None:
    store.register_worker("wrk_1", "gpu0", [MODEL], {"profile": "tiny", "random_weights": True})
    assert store.served_models(60)[MODEL]["profile"] == "tiny"
    time.sleep(0.05)
    assert store.served_models(0.01) == {}
    store.touch_worker("wrk_1")
    assert MODEL in store.served_models(60)
    store.remove_worker("wrk_1")
    assert store.served_models(60) == {}


def test_live_workers_are_every_fresh_registration_oldest_first(store: SqlStore) -> None:
    missing = {"missing": {"text-to-video": "no weights"}}
    store.register_worker("wrk_1", "gpu0", ["other/model"], {"profile": "ltx2", **missing})
    time.sleep(0.01)
    store.register_worker("wrk_2", "gpu1", [], {"profile": "wan"})
    live = store.live_workers(60)
    assert [(w.name, w.models) for w in live] == [("gpu0", ["other/model"]), ("gpu1", [])]
    assert live[0].info == {"profile": "ltx2", **missing}
    time.sleep(0.4)
    store.touch_worker("wrk_2")
    assert [w.name for w in store.live_workers(0.3)] == ["gpu1"]


def test_a_busy_worker_stays_present_through_its_heartbeats(store: SqlStore) -> None:
    ws = funded(store, permanent=100)
    store.register_worker("wrk_1", "gpu0", [MODEL], {})
    gen, _ = store.submit(new(ws.id), None)
    store.claim("wrk_1", [MODEL], 30)
    time.sleep(0.05)
    assert store.served_models(0.04) == {}
    store.heartbeat(gen.id, 1, "wrk_1", 10, 30)
    assert MODEL in store.served_models(0.04)


def test_keys_authenticate_until_revoked(store: SqlStore) -> None:
    ws = store.ensure_workspace("acme")
    key_id = store.add_key(ws.id, "rs_abcdefghi", "d" * 64, "ci")
    assert store.workspace_for_key("d" * 64) == ws
    assert [k.prefix for k in store.list_keys(ws.id)] == ["rs_abcdefghi"]
    assert store.revoke_key(key_id)
    assert store.workspace_for_key("d" * 64) is None
    assert not store.revoke_key(key_id)


def test_active_cap_per_key_counts_queued_and_running(store: SqlStore) -> None:
    ws = funded(store, permanent=1000)
    key_id = store.add_key(ws.id, "rs_capcapcap", "c" * 64, None)

    def capped() -> NewGeneration:
        return replace(new(ws.id), api_key_id=key_id, max_active_per_key=2)

    first, _ = store.submit(capped(), None)
    store.submit(capped(), None)
    store.claim("w1", [MODEL], 30)  # running still counts
    with pytest.raises(RateLimited, match="at most 2") as info:
        store.submit(capped(), None)
    assert info.value.retry_after_s > 0
    assert store.balances(ws.id).permanent == 960  # the refused one reserved nothing
    store.complete(first.id, 1, "w1", {}, 20)
    store.submit(capped(), None)
    # Another key of the same workspace has its own cap.
    other = store.add_key(ws.id, "rs_otherkeyx", "d" * 64, None)
    store.submit(replace(capped(), api_key_id=other), None)
    assert_ledger_balanced(store, ws.id)


def test_admit_counts_requests_per_window(store: SqlStore) -> None:
    ws = store.ensure_workspace("acme")
    key_id = store.add_key(ws.id, "rs_ratelimit", "e" * 64, None)
    assert [store.admit(key_id, 60.0, 3) for _ in range(3)] == [None, None, None]
    wait = store.admit(key_id, 60.0, 3)
    assert wait is not None
    assert 0 < wait <= 60
    other = store.add_key(ws.id, "rs_ratelimi2", "f" * 64, None)
    assert store.admit(other, 60.0, 3) is None
    # A new window starts the count again.
    assert store.admit(key_id, 0.05, 1) is None
    time.sleep(0.06)
    assert store.admit(key_id, 0.05, 1) is None


def test_caller_carries_the_key(store: SqlStore) -> None:
    ws = store.ensure_workspace("acme")
    key_id = store.add_key(ws.id, "rs_whoiscall", "a" * 64, None)
    caller = store.caller_for_key("a" * 64)
    assert caller is not None
    assert (caller.workspace, caller.key_id) == (ws, key_id)
