"""The webhook outbox and deliverer on SQLite and PostgreSQL, against a real receiver on
loopback: written with the terminal change, claimed under a lease, retried, never lost."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from reelserve.core.ids import new_generation_id
from reelserve.core.ports import NewGeneration, Workspace
from reelserve.core.webhooks import DueDelivery
from reelserve.media.webhook_post import post_webhook
from reelserve.services.webhooks import Deliverer, DeliveryPolicy
from reelserve.store import SqlStore
from reelserve.store.webhook_outbox import SqlWebhookOutbox
from tests.conftest import funded
from tests.media.media_testkit import FakeDns
from tests.webhook_receiver import Receiver, signature_valid, webhook_receiver

MODEL = "kling-ai/kling-v2.6"


def _canceled_with_webhook(store: SqlStore, ws: Workspace, url: str) -> str:
    """A task ended CANCELED (the quickest terminal status) that asked for ``url``."""
    gen, _ = store.submit(
        NewGeneration(
            id=new_generation_id(),
            workspace_id=ws.id,
            model=MODEL,
            mode="text-to-video",
            input={"prompt": "a cat", "webhook_url": url},
            plan={},
            price=20,
            max_attempts=2,
            deadline_s=3600.0,
        ),
        None,
    )
    store.cancel(ws.id, gen.id)
    return gen.id


def _as_is(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    return dict(snapshot)


def _deliverer(
    outbox: SqlWebhookOutbox,
    *,
    allow_private: bool = True,
    timeout_s: float = 2.0,
    **policy: Any,
) -> Deliverer:
    def send(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        return post_webhook(url, body, headers, timeout_s=timeout_s, allow_private=allow_private)

    defaults: dict[str, Any] = {"lease_s": 10.0, "retry_base_s": 0.05}
    return Deliverer(outbox, send, _as_is, DeliveryPolicy(**{**defaults, **policy}))


@pytest.fixture
def outbox(store: SqlStore) -> SqlWebhookOutbox:
    return SqlWebhookOutbox(store.engine)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


def test_a_terminal_change_writes_one_delivery_and_sends_it_signed(
    store: SqlStore, outbox: SqlWebhookOutbox, receiver: Receiver
) -> None:
    ws = funded(store, permanent=100)
    gen_id = _canceled_with_webhook(store, ws, receiver.url)
    [pending] = outbox.deliveries_for(gen_id)
    assert (pending.status, pending.attempts, pending.url) == ("pending", 0, receiver.url)
    assert _deliverer(outbox).deliver_due() == 1
    [got] = receiver.wait_for(1)
    assert got.id == pending.id
    assert signature_valid(outbox.webhook_secret(ws.id), got.headers, got.body)
    assert got.record["id"] == gen_id
    assert got.record["status"] == "CANCELED"
    assert got.headers["content-type"] == "application/json"
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    [done] = outbox.deliveries_for(gen_id)
    assert (done.status, done.attempts, done.last_status_code) == ("delivered", 1, 200)
    assert _deliverer(outbox).deliver_due() == 0  # nothing left: sent exactly once


def test_no_webhook_url_no_delivery(store: SqlStore, outbox: SqlWebhookOutbox) -> None:
    ws = funded(store, permanent=100)
    gen, _ = store.submit(
        NewGeneration(
            id=new_generation_id(),
            workspace_id=ws.id,
            model=MODEL,
            mode="text-to-video",
            input={"prompt": "a cat"},
            plan={},
            price=20,
            max_attempts=2,
            deadline_s=3600.0,
        ),
        None,
    )
    store.cancel(ws.id, gen.id)
    assert outbox.deliveries_for(gen.id) == []


def test_a_failing_receiver_is_retried_with_the_same_id(
    store: SqlStore, outbox: SqlWebhookOutbox
) -> None:
    ws = funded(store, permanent=100)
    with webhook_receiver(statuses=[500]) as receiver:
        gen_id = _canceled_with_webhook(store, ws, receiver.url)
        deliverer = _deliverer(outbox)
        deliverer.deliver_due()
        [first] = outbox.deliveries_for(gen_id)
        assert (first.status, first.last_status_code) == ("pending", 500)
        assert first.last_error == "receiver answered HTTP 500"
        time.sleep(0.1)  # the retry is due after 0.025..0.05 s
        deliverer.deliver_due()
        one, two = receiver.wait_for(2)
    assert one.id == two.id == first.id
    secret = outbox.webhook_secret(ws.id)
    assert signature_valid(secret, one.headers, one.body)
    assert signature_valid(secret, two.headers, two.body)
    [done] = outbox.deliveries_for(gen_id)
    assert (done.status, done.attempts) == ("delivered", 2)


def test_a_deliverer_dying_before_it_records_leads_to_a_redelivery_with_the_same_id(
    store: SqlStore, outbox: SqlWebhookOutbox, receiver: Receiver
) -> None:
    ws = funded(store, permanent=100)
    gen_id = _canceled_with_webhook(store, ws, receiver.url)
    doomed = _deliverer(outbox)
    due = outbox.claim_delivery(doomed.owner, 1.0)
    # Taken after the claim returned: its lease (database clock) ends before this + 1 s.
    claimed_at = time.monotonic()
    assert due is not None
    # While its lease lasts, nobody else takes it.
    survivor = _deliverer(outbox)
    assert survivor.deliver_one() is None
    assert doomed.attempt(due).ok  # sent and answered 200 ... and then the process died
    time.sleep(max(claimed_at + 1.1 - time.monotonic(), 0))
    redone = survivor.deliver_one()
    assert redone is not None
    assert redone.attempt == 2
    first, second = receiver.wait_for(2)
    assert first.id == second.id == due.id
    # The dead deliverer's late record cannot overwrite the survivor's.
    assert not doomed.record(due, doomed.attempt(due))
    [done] = outbox.deliveries_for(gen_id)
    assert (done.status, done.attempts) == ("delivered", 2)


def test_give_up_after_the_deadline_is_recorded(store: SqlStore, outbox: SqlWebhookOutbox) -> None:
    ws = funded(store, permanent=100)
    with webhook_receiver(statuses=[503] * 10) as receiver:
        gen_id = _canceled_with_webhook(store, ws, receiver.url)
        # The first retry (>= 0.05 s) would already fall after the 0.01 s allowed.
        _deliverer(outbox, give_up_after_s=0.01).deliver_due()
        receiver.wait_for(1)
    [gave_up] = outbox.deliveries_for(gen_id)
    assert gave_up.status == "failed"
    assert gave_up.last_error == "gave up after 1 attempts: receiver answered HTTP 503"
    assert _deliverer(outbox).deliver_due() == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "rebound.test"])
def test_private_receivers_are_refused_at_delivery_without_connecting(
    store: SqlStore, outbox: SqlWebhookOutbox, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name that resolves to loopback (a stub DNS answer: no DNS server runs here).
    dns = FakeDns(records={"rebound.test": ["127.0.0.1"]})
    dns.install(monkeypatch)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    ws = funded(store, permanent=100)
    # Stored without the submit-time check, as if DNS had pointed elsewhere back then.
    gen_id = _canceled_with_webhook(store, ws, f"http://{host}:{port}/hook")
    try:
        _deliverer(outbox, allow_private=False).deliver_due()
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()
    [refused] = outbox.deliveries_for(gen_id)
    assert refused.status == "pending"  # retried later, in case the name moves
    assert refused.last_error is not None
    assert refused.last_error.startswith("webhook_url:")
    assert "private, loopback" in refused.last_error
    assert refused.attempts == 1


def test_secret_rotation_signs_with_both_for_a_while(
    store: SqlStore, outbox: SqlWebhookOutbox, receiver: Receiver
) -> None:
    ws = funded(store, permanent=100)
    old = outbox.webhook_secret(ws.id)
    assert old.startswith("whsec_")
    assert outbox.webhook_secret(ws.id) == old  # stable until rotated
    new = outbox.webhook_secret(ws.id, rotate=True)
    assert new != old
    assert outbox.webhook_secret(ws.id) == new
    _canceled_with_webhook(store, ws, receiver.url)
    _deliverer(outbox).deliver_due()
    [got] = receiver.wait_for(1)
    assert signature_valid(new, got.headers, got.body)
    assert signature_valid(old, got.headers, got.body)
    assert not signature_valid("whsec_" + "A" * 44, got.headers, got.body)


def test_concurrent_deliverers_never_send_one_delivery_twice(
    store: SqlStore, outbox: SqlWebhookOutbox
) -> None:
    ws = funded(store, permanent=10_000)
    with webhook_receiver(hold_s=0.02) as receiver:
        gen_ids = [_canceled_with_webhook(store, ws, receiver.url) for _ in range(24)]
        deliverers = [_deliverer(SqlWebhookOutbox(store.engine)) for _ in range(4)]
        start = threading.Barrier(len(deliverers))
        counts: list[int] = []

        def run(deliverer: Deliverer) -> None:
            start.wait()
            counts.append(deliverer.deliver_due())

        threads = [threading.Thread(target=run, args=(d,)) for d in deliverers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        received = receiver.wait_for(len(gen_ids))
    ids = [r.id for r in received]
    assert len(ids) == len(set(ids)) == len(gen_ids)
    assert receiver.overlapping == []
    assert sum(counts) == len(gen_ids)
    assert sorted(r.record["id"] for r in received) == sorted(gen_ids)
    assert all(outbox.deliveries_for(g)[0].status == "delivered" for g in gen_ids)


def test_claim_returns_the_stored_record_and_the_workspace_secrets(
    store: SqlStore, outbox: SqlWebhookOutbox
) -> None:
    ws = funded(store, permanent=100)
    gen_id = _canceled_with_webhook(store, ws, "https://hooks.example.com/x")
    due: DueDelivery | None = outbox.claim_delivery("dlv_a", 30)
    assert due is not None
    assert (due.generation_id, due.url, due.attempt) == (
        gen_id,
        "https://hooks.example.com/x",
        1,
    )
    assert due.snapshot["status"] == "CANCELED"
    assert due.snapshot["usage"] == {"total": 0, "subscription": 0, "permanent": 0}
    assert due.secrets == (outbox.webhook_secret(ws.id),)
    assert outbox.claim_delivery("dlv_b", 30) is None  # leased to dlv_a


def test_the_migration_builds_the_tables_the_schema_declares(store: SqlStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from reelserve.store.schema import metadata

    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in differences if "webhook" in repr(d)] == []


KILLED_DELIVERER = """
import os, signal, sys
from reelserve.media.webhook_post import post_webhook
from reelserve.services.webhooks import Deliverer, DeliveryPolicy
from reelserve.store import connect
from reelserve.store.webhook_outbox import SqlWebhookOutbox

outbox = SqlWebhookOutbox(connect(sys.argv[1]))
deliverer = Deliverer(
    outbox,
    lambda url, body, headers: post_webhook(url, body, headers, timeout_s=5, allow_private=True),
    dict,
    DeliveryPolicy(lease_s=1.0),
)
due = outbox.claim_delivery(deliverer.owner, 1.0)
assert due is not None and deliverer.attempt(due).ok
os.kill(os.getpid(), signal.SIGKILL)  # killed between the send and recording it
"""


def test_a_killed_deliverer_process_leads_to_a_redelivery_with_the_same_id(
    database_url: str, store: SqlStore, outbox: SqlWebhookOutbox, receiver: Receiver
) -> None:
    ws = funded(store, permanent=100)
    gen_id = _canceled_with_webhook(store, ws, receiver.url)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_DELIVERER, database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    [sent] = receiver.wait_for(1)
    [stuck] = outbox.deliveries_for(gen_id)
    assert (stuck.id, stuck.status, stuck.attempts) == (sent.id, "pending", 1)
    time.sleep(1.1)  # the dead process's lease runs out
    assert _deliverer(outbox).deliver_due() == 1
    first, again = receiver.wait_for(2)
    assert first.id == again.id == stuck.id
    assert outbox.deliveries_for(gen_id)[0].status == "delivered"
