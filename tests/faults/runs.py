"""How many times each fault case runs, with which seeds, and where outcomes are recorded.

- ``REELSERVE_FAULT_RUNS``: runs per case and backend (default 2, enough for CI);
- ``REELSERVE_FAULT_SEED``: the base seed (default 1); run ``i`` uses ``seed + i``;
- ``REELSERVE_FAULT_REPORT``: a JSON-lines file each finished run appends its outcome to
  (``python -m tests.faults.summary FILE`` turns it into the table of docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from tests.faults.invariants import Tally

RUNS_ENV = "REELSERVE_FAULT_RUNS"
SEED_ENV = "REELSERVE_FAULT_SEED"
REPORT_ENV = "REELSERVE_FAULT_REPORT"


def run_count(default: int = 2) -> int:
    return max(int(os.environ.get(RUNS_ENV, default)), 1)


def seeded_runs(default: int = 2) -> list[random.Random]:
    """One seeded random source per run; the seed is its ``seed`` attribute's origin."""
    base = int(os.environ.get(SEED_ENV, "1"))
    return [random.Random(base + i) for i in range(run_count(default))]


def record(case: str, backend: str, run: int, tally: Tally, **extra: object) -> None:
    """Append one run's outcome to the report file, when one is named."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    row = {
        "case": case,
        "backend": backend,
        "run": run,
        "seed": int(os.environ.get(SEED_ENV, "1")) + run,
        "at": time.time(),
        "session": os.getpid(),  # one pytest session: its runs share one deployment
        **tally.as_row(),
        **extra,
    }
    with Path(path).open("a") as handle:
        handle.write(json.dumps(row, sort_keys=True) + "\n")
