"""Webhooks in the Standard Webhooks format (https://www.standardwebhooks.com/): the
signature, the retry schedule and the outbox port the deliverer works through.

A message is signed with HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{body}"``
under the workspace secret (``whsec_`` + base64 of the key bytes); ``webhook-signature``
is ``v1,<base64 digest>``, one per secret, space-separated (two while a rotated secret
is still honoured).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from reelserve.core.ids import ulid

SECRET_PREFIX: Final = "whsec_"
SECRET_BYTES: Final = 32
# The wake-up channel a new delivery is announced on (see core.wakeups).
WEBHOOKS: Final = "webhooks"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    """The ``webhook-id`` of one event, kept for every attempt so receivers can dedupe."""
    return f"msg_{ulid()}"


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of the message under one ``whsec_`` secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets_),
        "content-type": "application/json",
    }


def retry_delay(attempt: int, base_s: float, cap_s: float, jitter: float) -> float:
    """Seconds before attempt ``attempt + 1``: doubling from ``base_s`` up to ``cap_s``,
    scaled into [50 %, 100 %] by ``jitter`` in [0, 1) so failed receivers are not hit by
    every delivery at the same moment."""
    ceiling = min(base_s * 2.0 ** max(attempt - 1, 0), cap_s)
    return float(ceiling * (0.5 + 0.5 * jitter))


@dataclass(frozen=True)
class DueDelivery:
    """A delivery claimed by one deliverer until its lease ends."""

    id: str  # the webhook-id
    generation_id: str
    url: str
    attempt: int  # 1 for the first try
    age_s: float  # since the event, on the database clock
    snapshot: dict[str, Any]  # the task record as stored (blob keys, not URLs)
    secrets: tuple[str, ...]  # the workspace's secrets to sign with


@dataclass(frozen=True)
class DeliveryState:
    id: str
    generation_id: str
    url: str
    status: str  # pending, delivered, failed (gave up)
    attempts: int
    last_status_code: int | None
    last_error: str | None


class WebhookOutbox(Protocol):
    """Deliveries written with the terminal status change; claimed with a lease."""

    def claim_delivery(self, owner: str, lease_s: float) -> DueDelivery | None: ...
    def delivery_succeeded(
        self, delivery_id: str, owner: str, attempt: int, status_code: int
    ) -> bool: ...
    def delivery_failed(
        self,
        delivery_id: str,
        owner: str,
        attempt: int,
        error: str,
        status_code: int | None,
        retry_in_s: float | None,
    ) -> bool: ...
    def webhook_secret(self, workspace_id: str, *, rotate: bool = False) -> str: ...
    def deliveries_for(self, generation_id: str) -> list[DeliveryState]: ...


# (url, body, headers) → the receiver's HTTP status; raises a ReelserveError whose message
# is safe to record when the URL is refused or the transfer fails.
class WebhookSender(Protocol):
    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> int: ...
