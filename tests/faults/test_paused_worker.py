"""A worker frozen (SIGSTOP) past its lease while another worker completes its task: once
thawed (SIGCONT), its late finish is refused by the store's fence and its output file is
deleted, never left in the blob store.

Runs alternate between two places to freeze it: mid-denoise from outside (the test sends
SIGSTOP), and after its output was stored, just before the finish transaction (the
test-only ``REELSERVE_FAULT=pause_after_upload`` makes it stop itself there). Workers run
the ``fake`` profile, which stands in for a GPU model; see tests/faults/site.py.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_url
from tests.faults.runs import record, seeded_runs
from tests.faults.site import TERMINAL, Site, open_site, wait_log, wait_stopped

pytestmark = pytest.mark.slow


def test_a_late_finish_after_the_lease_was_lost_is_fenced(site: Site) -> None:
    site.deployment.start_server("--no-worker")
    for run, rng in enumerate(seeded_runs()):
        after_upload = run % 2 == 1
        fault = {"REELSERVE_FAULT": "pause_after_upload"} if after_upload else {}
        frozen = site.worker(rng.randint(20, 30), 0.1, **fault)
        gen_id = site.submit()
        if after_upload:
            wait_stopped(frozen)
        else:
            site.wait_status(gen_id, ("IN_PROGRESS",))
            time.sleep(rng.uniform(0.2, 1.0))  # somewhere in the denoising steps
            os.kill(frozen.popen.pid, signal.SIGSTOP)
        gen = site.store.get(gen_id)
        assert gen is not None
        assert (gen.status.value, gen.attempt) == ("IN_PROGRESS", 1)
        first_output = site.data_dir / "files" / "outputs" / gen.workspace_id / f"{gen_id}-1.mp4"
        assert first_output.is_file() == after_upload

        # Past the lease, the reaper requeues the task and another worker completes it.
        other = site.worker()
        # (A freeze inside a heartbeat transaction holds the row lock until PostgreSQL ends
        # the idle session: allow for that timeout too.)
        site.wait_status(gen_id, ("COMPLETED", "FAILED", "CANCELED"), timeout=120)
        other.stop()
        done = site.store.get(gen_id)
        assert done is not None
        assert (done.status.value, done.attempt) == ("COMPLETED", 2)

        os.kill(frozen.popen.pid, signal.SIGCONT)
        wait_log(frozen, "lease lost")
        frozen.stop()
        assert frozen.popen.returncode == 0, frozen.text()
        after = site.store.get(gen_id)
        assert after == done  # the late attempt changed nothing
        assert not first_output.exists()  # and its output did not outlive it
        tally = site.check()
        assert tally.orphans == []
        record("SIGSTOP past the lease, SIGCONT", site.backend, run, tally)


@pytest.mark.postgres
def test_a_worker_frozen_inside_a_transaction_does_not_hide_its_task(tmp_path: Path) -> None:
    """Frozen while its heartbeat transaction holds the task's row lock: the reaper skips
    locked rows, so the task could wait as long as the freeze lasts. PostgreSQL ends the
    idle session (``idle_in_transaction_session_timeout``), the lock goes, the task is
    requeued and completed by another worker; the thawed worker is fenced.

    PostgreSQL only: on SQLite a process frozen inside a write transaction holds the one
    database write lock and stalls every writer until it resumes or dies (see
    docs/reliability.md)."""
    urls = fresh_postgres_url()
    with open_site(tmp_path, "postgres", next(urls)) as site:
        site.deployment.start_server("--no-worker")
        for run, _rng in enumerate(seeded_runs(1)):
            frozen = site.worker(30, 0.1, REELSERVE_FAULT="pause_in_heartbeat")
            gen_id = site.submit()
            wait_stopped(frozen)
            other = site.worker()
            assert site.wait_status(gen_id, TERMINAL, timeout=120) == "COMPLETED", site.logs()
            other.stop()
            os.kill(frozen.popen.pid, signal.SIGCONT)
            wait_log(frozen, "lease lost")
            frozen.stop()
            done = site.store.get(gen_id)
            assert done is not None
            assert done.attempt == 2
            tally = site.check()
            assert tally.orphans == []
            record("SIGSTOP inside a heartbeat transaction", site.backend, run, tally)
    for _ in urls:  # drops the schema
        pass
