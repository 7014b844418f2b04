"""The status machine and stage-weighted progress."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelserve.core.progress import Stage, advance, overall_percent
from reelserve.core.status import TERMINAL, Status, can_transition


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (Status.IN_QUEUE, Status.IN_PROGRESS, True),
        (Status.IN_QUEUE, Status.CANCELED, True),
        (Status.IN_QUEUE, Status.COMPLETED, False),
        (Status.IN_PROGRESS, Status.COMPLETED, True),
        (Status.IN_PROGRESS, Status.IN_QUEUE, True),
        (Status.COMPLETED, Status.FAILED, False),
        (Status.CANCELED, Status.IN_QUEUE, False),
        (Status.FAILED, Status.COMPLETED, False),
    ],
)
def test_transitions(current: Status, target: Status, allowed: bool) -> None:
    assert can_transition(current, target) is allowed


def test_terminal_states_are_final() -> None:
    for status in TERMINAL:
        assert status.terminal
        assert not any(can_transition(status, other) for other in Status)


def test_stages_fill_the_bar_in_order() -> None:
    assert overall_percent(Stage.PREPARE, 0.0) == 0
    assert overall_percent(Stage.RENDER, 0.0) == 5
    assert overall_percent(Stage.RENDER, 1.0) == 90
    assert overall_percent(Stage.STORE, 1.0) == 99  # 100 only when completed


@given(st.lists(st.tuples(st.sampled_from(list(Stage)), st.floats(0, 1)), max_size=30))
def test_progress_never_goes_back(reports: list[tuple[Stage, float]]) -> None:
    shown = 0
    for stage, fraction in reports:
        new = advance(shown, overall_percent(stage, fraction))
        assert new >= shown
        assert 0 <= new <= 99
        shown = new
