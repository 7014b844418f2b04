"""Credit arithmetic over the two buckets (api.md §5): pure, no storage.

Reserve takes subscription first (it expires, permanent does not). When a task costs
less than was reserved (motion control priced on the actual reference length), the
capture also comes from subscription first, so the refund lands in permanent credits
where possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Bucket(StrEnum):
    SUBSCRIPTION = "subscription"
    PERMANENT = "permanent"


class EntryKind(StrEnum):
    GRANT = "grant"
    RESERVE = "reserve"
    CAPTURE = "capture"
    RELEASE = "release"
    EXPIRE = "expire"


@dataclass(frozen=True)
class Split:
    subscription: int
    permanent: int

    @property
    def total(self) -> int:
        return self.subscription + self.permanent

    def as_usage(self) -> dict[str, int]:
        return {
            "total": self.total,
            "subscription": self.subscription,
            "permanent": self.permanent,
        }

    def get(self, bucket: Bucket) -> int:
        return self.subscription if bucket is Bucket.SUBSCRIPTION else self.permanent


ZERO = Split(0, 0)


def split_reserve(subscription_available: int, permanent_available: int, price: int) -> Split:
    """How to take ``price`` from the buckets, or raise ValueError when short."""
    if price < 0:
        raise ValueError("price must not be negative")
    from_subscription = min(max(subscription_available, 0), price)
    from_permanent = price - from_subscription
    if from_permanent > max(permanent_available, 0):
        raise ValueError("insufficient credits")
    return Split(from_subscription, from_permanent)


def split_capture(reserved: Split, actual: int) -> tuple[Split, Split]:
    """Split a final charge into (captured, released) parts of the reserve."""
    if actual < 0:
        raise ValueError("charge must not be negative")
    actual = min(actual, reserved.total)
    captured_sub = min(reserved.subscription, actual)
    captured = Split(captured_sub, actual - captured_sub)
    released = Split(
        reserved.subscription - captured.subscription,
        reserved.permanent - captured.permanent,
    )
    return captured, released
