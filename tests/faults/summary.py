"""``python -m tests.faults.summary REPORT.jsonl``: the outcome table of
docs/reliability.md, from the rows the fault tests appended (see tests/faults/runs.py)."""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path


def main(path: str) -> None:
    groups: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        groups[(str(row["case"]), str(row["backend"]))].append(row)
    print(
        "| case | backend | runs | tasks: final status | lost | duplicated | overcharged "
        "| orphan outputs |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (case, backend), rows in sorted(groups.items()):
        statuses: Counter[str] = Counter()
        for row in rows:
            statuses.update(row["statuses"])  # type: ignore[arg-type]
        final = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        total = {k: sum(int(r[k]) for r in rows) for k in ("lost", "duplicated", "overcharged")}  # type: ignore[call-overload]
        orphans = sum(int(r["orphans"]) for r in rows)  # type: ignore[call-overload]
        print(
            f"| {case} | {backend} | {len(rows)} | {final} | {total['lost']} "
            f"| {total['duplicated']} | {total['overcharged']} | {orphans} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
