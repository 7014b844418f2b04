"""PostgreSQL restarts under a running deployment (API, reaper, a worker mid-task): the
service and the worker recover by themselves, every task ends COMPLETED once, charged
once, and new work is accepted and done afterwards.

This needs a private cluster (initdb into a temporary folder, on a free port), never the
shared server. Workers run the ``fake`` profile, which stands in for a GPU model; see
tests/faults/site.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.faults.pg_cluster import PgCluster
from tests.faults.runs import record, seeded_runs
from tests.faults.site import TERMINAL, open_site

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_service_and_workers_recover_from_a_postgres_restart(
    cluster: PgCluster, tmp_path: Path
) -> None:
    with open_site(tmp_path, "postgres (private, restarted)", cluster.url) as site:
        server = site.deployment.start_server("--no-worker")
        worker = site.worker(20, 0.1)
        for run, rng in enumerate(seeded_runs()):
            ids = [site.submit() for _ in range(3)]
            site.wait_status(ids[0], ("IN_PROGRESS",))
            time.sleep(rng.uniform(0.0, 1.5))
            cluster.stop(rng.choice(["fast", "immediate"]))
            time.sleep(rng.uniform(0.5, 3.0))
            cluster.start()

            for gen_id in ids:
                assert site.wait_status(gen_id, TERMINAL, timeout=120) == "COMPLETED", site.logs()
            assert server.popen.poll() is None, server.text()
            assert worker.popen.poll() is None, worker.text()
            ready = httpx.get(f"{site.deployment.base}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            later = site.submit()  # the service takes and does new work after the restart
            assert site.wait_status(later, TERMINAL, timeout=120) == "COMPLETED", site.logs()
            tally = site.check()
            record("restart PostgreSQL mid-run", site.backend, run, tally)
