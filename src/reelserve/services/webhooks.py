"""The webhook deliverer: claims due deliveries from the outbox, POSTs each signed
record, and records the outcome. Any number of deliverers (one per API replica) can run
at once; the outbox's lease keeps them from sending one delivery concurrently.

A receiver's failure only ever affects its delivery: it is retried with exponential
backoff and jitter until ``give_up_after_s`` after the event, then recorded as given up.
The task itself was finished before the delivery existed.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reelserve.core.errors import ReelserveError
from reelserve.core.ids import ulid
from reelserve.core.webhooks import (
    DueDelivery,
    WebhookOutbox,
    WebhookSender,
    retry_delay,
    signed_headers,
)

log = logging.getLogger(__name__)

# A stored snapshot → the record a GET returns (fresh signed file URLs).
Presenter = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class DeliveryPolicy:
    lease_s: float = 60.0  # longer than one attempt can take
    retry_base_s: float = 10.0
    retry_cap_s: float = 3600.0
    give_up_after_s: float = 24 * 3600.0


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None


class Deliverer:
    def __init__(
        self,
        outbox: WebhookOutbox,
        send: WebhookSender,
        present: Presenter,
        policy: DeliveryPolicy,
        *,
        owner: str | None = None,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.send = send
        self.present = present
        self.policy = policy
        self.owner = owner or f"dlv_{ulid()}"
        self.jitter = jitter
        self.clock = clock

    def attempt(self, due: DueDelivery) -> Attempt:
        """Send one claimed delivery; never raises for the receiver's sake."""
        body = json.dumps(self.present(due.snapshot), separators=(",", ":")).encode()
        headers = signed_headers(due.secrets, due.id, int(self.clock()), body)
        try:
            status = self.send(due.url, body, headers)
        except ReelserveError as exc:
            return Attempt(ok=False, status_code=None, error=exc.message)
        except Exception:
            log.exception("webhook %s: sending failed", due.id)
            return Attempt(ok=False, status_code=None, error="internal error while sending")
        if 200 <= status < 300:
            return Attempt(ok=True, status_code=status, error=None)
        return Attempt(ok=False, status_code=status, error=f"receiver answered HTTP {status}")

    def record(self, due: DueDelivery, outcome: Attempt) -> bool:
        if outcome.ok:
            assert outcome.status_code is not None
            return self.outbox.delivery_succeeded(
                due.id, self.owner, due.attempt, outcome.status_code
            )
        delay = retry_delay(
            due.attempt, self.policy.retry_base_s, self.policy.retry_cap_s, self.jitter()
        )
        retry_in: float | None = delay
        error = outcome.error or "failed"
        if due.age_s + delay > self.policy.give_up_after_s:
            retry_in = None
            error = f"gave up after {due.attempt} attempts: {error}"
            log.warning("webhook %s for %s: %s", due.id, due.generation_id, error)
        return self.outbox.delivery_failed(
            due.id, self.owner, due.attempt, error, outcome.status_code, retry_in
        )

    def deliver_one(self) -> DueDelivery | None:
        """Claim, send and record one due delivery; None when nothing is due."""
        due = self.outbox.claim_delivery(self.owner, self.policy.lease_s)
        if due is None:
            return None
        self.record(due, self.attempt(due))
        return due

    def deliver_due(self, stop: threading.Event | None = None) -> int:
        """Every delivery due now, one at a time; how many were attempted."""
        count = 0
        while stop is None or not stop.is_set():
            if self.deliver_one() is None:
                break
            count += 1
        return count


def run_deliverer(
    deliverer: Deliverer,
    poll_s: float,
    stop: threading.Event,
    wait: Callable[[float], bool],
) -> None:
    """Deliver until ``stop``; ``wait`` returns early when a new delivery is announced."""
    while not stop.is_set():
        try:
            deliverer.deliver_due(stop)
        except Exception:
            # A database hiccup must not kill the deliverer; the next round tries again.
            log.exception("webhook delivery round failed")
        if stop.is_set():
            break
        wait(poll_s)
