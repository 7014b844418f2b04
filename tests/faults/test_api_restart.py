"""The API process is SIGKILLed while clients follow tasks over SSE, then started again
on the same port: SDK clients (``reelserve.client``) reconnect with ``Last-Event-ID``
and each sees its task's right end, once, with no state repeated or out of order.

The separate worker runs the ``fake`` profile, which stands in for a GPU model; see
tests/faults/site.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from reelserve.client import Backoff, Client, Generation
from tests.faults.runs import record, seeded_runs
from tests.faults.site import MODEL, Site, record_of

pytestmark = pytest.mark.slow

ORDER = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2, "FAILED": 2, "CANCELED": 2}


def _follow(
    client: Client, gen_id: str | None, seen: list[Generation], errors: list[BaseException]
) -> None:
    if gen_id is None:  # create through the SSE route, then follow the same stream
        stream = client.generations.stream(MODEL, prompt="a kite over the dunes")
    else:
        stream = client.generations.follow(gen_id)
    try:
        seen.extend(stream)
    except Exception as exc:
        errors.append(exc)


def test_clients_following_over_sse_see_the_end_across_an_api_restart(site: Site) -> None:
    server = site.deployment.start_server("--no-worker")
    site.worker(20, 0.1)
    for run, rng in enumerate(seeded_runs()):
        client = Client(
            site.deployment.base,
            site.deployment.key,
            timeout=30,
            max_retries=100,  # patient enough for a restart on a loaded machine
            backoff=Backoff(initial=0.1, maximum=0.5),
        )
        ids: list[str | None] = [site.submit() for _ in range(3)] + [None]
        seen: list[list[Generation]] = [[] for _ in ids]
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=_follow, args=(client, gen_id, out, errors), daemon=True)
            for gen_id, out in zip(ids, seen, strict=True)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while not all(out for out in seen) and time.monotonic() < deadline:
            time.sleep(0.05)  # every stream has delivered something: all are open
        assert all(seen), site.logs()
        time.sleep(rng.uniform(0.0, 1.5))
        server.kill()
        down_at = time.monotonic()
        time.sleep(rng.uniform(0.2, 1.5))
        server = site.deployment.start_server("--no-worker")
        downtime = time.monotonic() - down_at
        for thread in threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), site.logs()
        client.close()
        assert errors == [], (downtime, errors)

        for out in seen:
            statuses = [r.status for r in out]
            assert sum(ORDER[s] == 2 for s in statuses) == 1, statuses  # one end, last
            ranks = [ORDER[s] for s in statuses]
            assert ranks == sorted(ranks), statuses
            progress = [r.progress for r in out]
            assert progress == sorted(progress), progress
            assert out.count(out[-1]) == 1  # no record handed out twice
            final = record_of(site, out[-1].id)
            assert final["status"] == out[-1].status == "COMPLETED", (final, statuses)
            assert out[-1].usage is not None
            assert final["usage"]["total"] == out[-1].usage.total > 0
        tally = site.check()
        assert tally.orphans == []
        case = "SIGKILL the API under open SSE streams"
        record(case, site.backend, run, tally, downtime_s=round(downtime, 1))
