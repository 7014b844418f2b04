"""The fair claim's cost against the queue's length, on PostgreSQL.

Fills a fresh schema with ``--queued`` queued tasks spread over ``--workspaces``
workspaces (the first one capped at 2 running, the second with priority 5), after as many
finished ones (``--history``; a queue head found by walking past them would be slow),
prints the query plan of the claim's pick (``EXPLAIN ANALYZE``), then times claims at that
queue length and at a short one, so the two can be compared, with the cost of the queue
gauges that ``/metrics`` reads.

    python benchmarks/claim_plan.py [--queued 100000] [--workspaces 50]
        [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from reelserve.core.ids import new_generation_id
from reelserve.core.status import Status
from reelserve.store import SqlStore, connect, upgrade
from reelserve.store.schema import generations
from reelserve.store.sql_store import SqlStore as Store

MODEL = "kling-ai/kling-v2.6"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fill(store: SqlStore, queued: int, workspace_count: int, history: int) -> None:
    ids = [store.ensure_workspace(f"ws{i}").id for i in range(workspace_count)]
    store.set_sharing("ws0", max_running=2)
    store.set_sharing("ws1", priority=5)
    batch = []
    now = time.time()
    for n in range(history + queued):
        batch.append(
            {
                "id": new_generation_id(),
                "workspace_id": ids[n % workspace_count],
                "model": MODEL,
                "mode": "text-to-video",
                "status": (Status.COMPLETED if n < history else Status.IN_QUEUE).value,
                "input": {},
                "plan": {},
                "price": 0,
                "reserved_subscription": 0,
                "reserved_permanent": 0,
                "usage_subscription": 0,
                "usage_permanent": 0,
                "max_attempts": 3,
                "not_before": now,
                "deadline_at": now + 86400,
                "created_at": now,
            }
        )
        if len(batch) == 5000:
            with store.engine.begin() as conn:
                conn.execute(sa.insert(generations), batch)
            batch = []
    if batch:
        with store.engine.begin() as conn:
            conn.execute(sa.insert(generations), batch)
    with store.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))


def explain(store: SqlStore) -> str:
    query = Store._pick([MODEL], time.time(), 0, set(), set())
    sql = query.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True})
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").all()
    return "\n".join(row[0] for row in rows)


def time_claims(store: SqlStore, count: int) -> float:
    """Median milliseconds of ``count`` claims (each completes at once, as a fast worker)."""
    took = []
    for n in range(count):
        started = time.perf_counter()
        gen = store.claim(f"w{n}", [MODEL], 60)
        took.append((time.perf_counter() - started) * 1000)
        assert gen is not None
        store.complete(gen.id, gen.attempt, f"w{n}", {"videos": []}, 0)
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=200)
    args = parser.parse_args()
    for queued in (1_000, args.queued):
        with fresh_schema(args.url) as url:
            engine = connect(url)
            upgrade(engine)
            store = SqlStore(engine)
            fill(store, queued, args.workspaces, args.history)
            plan = explain(store)
            if queued == args.queued:
                print(
                    f"-- pick plan: {queued} queued and {args.history} finished tasks, "
                    f"{args.workspaces} workspaces"
                )
                print(plan)
            pick = plan.splitlines()[-1].strip()  # "Execution Time: ... ms"
            started = time.perf_counter()
            store.active_counts()  # what each /metrics scrape reads for the queue gauges
            gauges_ms = (time.perf_counter() - started) * 1000
            median = time_claims(store, args.claims)
            print(
                f"{queued:>8} queued: pick {pick}; whole claim median {median:.2f} ms "
                f"({args.claims} claims, commit included); queue gauges {gauges_ms:.1f} ms"
            )
            engine.dispose()


if __name__ == "__main__":
    main()
