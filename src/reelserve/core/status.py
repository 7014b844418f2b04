"""The task status machine: IN_QUEUE → IN_PROGRESS → COMPLETED | FAILED | CANCELED."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELED})
ACTIVE = frozenset({Status.IN_QUEUE, Status.IN_PROGRESS})

# IN_PROGRESS → IN_QUEUE is the reaper handing an expired lease back to the queue.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.IN_QUEUE: frozenset({Status.IN_PROGRESS, Status.CANCELED, Status.FAILED}),
    Status.IN_PROGRESS: frozenset(
        {Status.IN_QUEUE, Status.COMPLETED, Status.FAILED, Status.CANCELED}
    ),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELED: frozenset(),
}


def can_transition(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]
