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

import pytest

from tests.faults.runs import record, seeded_runs
from tests.faults.site import Site, wait_log, wait_stopped

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
        site.wait_status(gen_id, ("COMPLETED", "FAILED", "CANCELED"))
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
