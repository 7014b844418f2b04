"""A generation as JSON between the API's internal routes and a remote worker.

Lossless both ways (``from_wire(to_wire(g)) == g``), unlike the public task record,
which hides the plan, the lease and the reserve.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reelserve.core.ledger import Split
from reelserve.core.records import Generation
from reelserve.core.status import Status

_SPLITS = ("reserved", "usage")


def generation_to_wire(gen: Generation) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    for f in dataclasses.fields(gen):
        value = getattr(gen, f.name)
        if isinstance(value, Split):
            value = {"subscription": value.subscription, "permanent": value.permanent}
        elif isinstance(value, Status):
            value = value.value
        wire[f.name] = value
    return wire


def generation_from_wire(wire: dict[str, Any]) -> Generation:
    known = {f.name for f in dataclasses.fields(Generation)}
    values = {name: value for name, value in wire.items() if name in known}
    values["status"] = Status(values["status"])
    for name in _SPLITS:
        values[name] = Split(int(values[name]["subscription"]), int(values[name]["permanent"]))
    return Generation(**values)
