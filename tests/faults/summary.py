"""``python -m tests.faults.summary REPORT.jsonl``: the outcome table of
docs/reliability.md, from the rows the fault tests appended (see tests/faults/runs.py)."""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any


def main(path: str) -> None:
    # (case, backend) → session → rows; rows without a session came from one session.
    groups: dict[tuple[str, str], dict[int, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        groups[(str(row["case"]), str(row["backend"]))][int(row.get("session", 0))].append(row)
    print(
        "| case | backend | runs | tasks: final status | lost | duplicated | overcharged "
        "| orphan outputs |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (case, backend), sessions in sorted(groups.items()):
        # A session's check covers every task of its case so far: its last row counts them
        # all; sessions (separate deployments) add up.
        lasts = [max(rows, key=lambda row: int(row["run"])) for rows in sessions.values()]
        runs = sum(len(rows) for rows in sessions.values())
        statuses: Counter[str] = Counter()
        for last in lasts:
            statuses.update(last["statuses"])
        final = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        keys = ("lost", "duplicated", "overcharged", "orphans")
        cells = " | ".join(str(sum(int(last[k]) for last in lasts)) for k in keys)
        print(f"| {case} | {backend} | {runs} | {final} | {cells} |")


if __name__ == "__main__":
    main(sys.argv[1])
