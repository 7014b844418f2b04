"""Credit arithmetic: table-driven and property-based."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelserve.core.ledger import Split, split_capture, split_reserve


@pytest.mark.parametrize(
    ("subscription", "permanent", "price", "expected"),
    [
        (100, 100, 20, Split(20, 0)),
        (15, 100, 20, Split(15, 5)),
        (0, 20, 20, Split(0, 20)),
        (20, 0, 20, Split(20, 0)),
        (0, 0, 0, Split(0, 0)),
        (-5, 30, 20, Split(0, 20)),  # an overdrawn bucket is treated as empty
    ],
)
def test_reserve_takes_subscription_first(
    subscription: int, permanent: int, price: int, expected: Split
) -> None:
    assert split_reserve(subscription, permanent, price) == expected


@pytest.mark.parametrize(("subscription", "permanent", "price"), [(10, 9, 20), (0, 0, 1)])
def test_reserve_refuses_when_short(subscription: int, permanent: int, price: int) -> None:
    with pytest.raises(ValueError, match="insufficient"):
        split_reserve(subscription, permanent, price)


@pytest.mark.parametrize(
    ("reserved", "actual", "captured", "released"),
    [
        (Split(10, 30), 40, Split(10, 30), Split(0, 0)),
        (Split(10, 30), 25, Split(10, 15), Split(0, 15)),
        (Split(10, 30), 5, Split(5, 0), Split(5, 30)),
        (Split(0, 120), 16, Split(0, 16), Split(0, 104)),
        (Split(10, 10), 0, Split(0, 0), Split(10, 10)),
        (Split(10, 10), 50, Split(10, 10), Split(0, 0)),  # never more than reserved
    ],
)
def test_capture_from_subscription_first(
    reserved: Split, actual: int, captured: Split, released: Split
) -> None:
    assert split_capture(reserved, actual) == (captured, released)


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 20_000))
def test_reserve_never_overdraws(subscription: int, permanent: int, price: int) -> None:
    try:
        split = split_reserve(subscription, permanent, price)
    except ValueError:
        assert price > subscription + permanent
        return
    assert split.total == price
    assert 0 <= split.subscription <= subscription
    assert 0 <= split.permanent <= permanent


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 3000))
def test_capture_plus_release_is_the_reserve(sub: int, perm: int, actual: int) -> None:
    reserved = Split(sub, perm)
    captured, released = split_capture(reserved, actual)
    assert captured.subscription + released.subscription == sub
    assert captured.permanent + released.permanent == perm
    assert captured.total == min(actual, reserved.total)
    assert (
        min(captured.subscription, captured.permanent, released.subscription, released.permanent)
        >= 0
    )
