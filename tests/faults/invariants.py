"""The one checker every fault case ends with: "at-least-once execution, exactly-once
effects" stated as facts about the store, the ledger, the events and the blobs.

- every task is terminal or queued (``settled``): nothing is stuck IN_PROGRESS;
- a terminal task has exactly one terminal event, and it is the last one; others none;
- the buckets equal the sums of their ledger rows and never go negative;
- nothing stays reserved on a terminal task (reserve = capture + release);
- credits are captured for COMPLETED tasks only, exactly their charge, once per bucket;
- every credit granted is either in a bucket, held by an unfinished task, or captured;
- a COMPLETED task's output exists; other output files of a task are counted as orphans.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reelserve.core.records import Generation
from reelserve.core.status import Status
from reelserve.store import SqlStore


@dataclass
class Tally:
    """What a case ended with; ``lost``/``duplicated``/``overcharged`` must stay zero."""

    statuses: Counter[str] = field(default_factory=Counter)
    lost: int = 0  # neither terminal nor queued when the case had settled
    duplicated: int = 0  # more than one terminal event or capture row
    overcharged: int = 0  # a capture on a task that did not complete, or above its charge
    orphans: list[str] = field(default_factory=list)  # output files no task refers to

    def as_row(self) -> dict[str, object]:
        return {
            "statuses": dict(self.statuses),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "overcharged": self.overcharged,
            "orphans": len(self.orphans),
        }


def _amounts(store: SqlStore, gen_id: str) -> dict[str, int]:
    entries = store.ledger_for(gen_id)
    kinds = Counter((e["kind"], e["bucket"]) for e in entries)
    # The unique key (generation, kind, bucket) makes this hold by construction; say so.
    assert all(count == 1 for count in kinds.values()), (gen_id, entries)
    return {
        kind: sum(e["amount"] for e in entries if e["kind"] == kind)
        for kind in ("reserve", "capture", "release")
    }


def check_invariants(
    store: SqlStore,
    workspace_id: str,
    granted: int,
    *,
    settled: bool = True,
    outputs_dir: Path | None = None,
    charges: Mapping[str, int] | None = None,
) -> Tally:
    """Assert the invariants for one workspace; ``charges`` (task → charge) defaults to
    each task's price. Returns the tally for the outcome record."""
    tally = Tally()
    sums, balances = store.ledger_sums(workspace_id), store.raw_balances(workspace_id)
    assert sums == balances, (sums, balances)
    assert all(value >= 0 for value in balances.values()), balances
    held = captured = 0
    tasks: list[Generation] = store.list_for_workspace(workspace_id, None, 100_000)
    for gen in tasks:
        tally.statuses[gen.status.value] += 1
        events = store.events_after(gen.id, 0)
        terminal_events = [e for e in events if e.status.terminal]
        amount = _amounts(store, gen.id)
        assert amount["reserve"] == gen.price, (gen.id, amount, gen.price)
        if gen.status.terminal:
            if len(terminal_events) != 1:
                tally.duplicated += 1
            assert len(terminal_events) == 1, (gen.id, [e.status for e in events])
            assert events[-1].status is gen.status, (gen.id, events[-1].status, gen.status)
            assert amount["reserve"] == amount["capture"] + amount["release"], (gen.id, amount)
            assert gen.usage.total == amount["capture"], (gen.id, gen.usage, amount)
            if gen.status is Status.COMPLETED:
                expected = gen.price if charges is None else charges[gen.id]
                if amount["capture"] > expected:
                    tally.overcharged += 1
                assert amount["capture"] == expected, (gen.id, amount, expected)
            else:
                if amount["capture"]:
                    tally.overcharged += 1
                assert amount["capture"] == 0, (gen.id, gen.status, amount)
        else:
            assert not terminal_events, (gen.id, gen.status, [e.status for e in events])
            assert amount["capture"] == amount["release"] == 0, (gen.id, amount)
            held += amount["reserve"]
            if settled and gen.status is not Status.IN_QUEUE:
                tally.lost += 1
        captured += amount["capture"]
    assert sum(balances.values()) + held + captured == granted, (balances, held, captured)
    if settled:
        assert tally.lost == 0, tally
    if outputs_dir is not None:
        tally.orphans = _orphans(tasks, outputs_dir / workspace_id)
    return tally


def _orphans(tasks: list[Generation], folder: Path) -> list[str]:
    """Output files that no COMPLETED task refers to; asserts the referenced ones exist."""
    referenced = set()
    for gen in tasks:
        if gen.status is Status.COMPLETED and gen.data:
            videos = gen.data["videos"]
            assert len(videos) == 1, (gen.id, videos)
            name = Path(videos[0]["key"]).name
            assert (folder / name).is_file(), (gen.id, name)
            referenced.add(name)
    present = {p.name for p in folder.glob("*.mp4")} if folder.is_dir() else set()
    return sorted(present - referenced)
