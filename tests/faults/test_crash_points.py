"""SIGKILL a worker at each crash point of a task (after claim, mid-denoise, after the
upload, inside the finish transaction); a fresh worker and the reaper take over. Every
run ends with the task COMPLETED once and charged once; the invariants hold.

The crash points are armed through ``REELSERVE_FAULT`` (test-only, see
``reelserve.cli.faults``). Workers run the ``fake`` profile, which stands in for a GPU
model; see tests/faults/site.py.
"""

from __future__ import annotations

import pytest

from tests.faults.runs import record, seeded_runs
from tests.faults.site import Site, died_of_sigkill, record_of

pytestmark = pytest.mark.slow

# Where the killed attempt's output file can be left behind (written, never referenced).
UPLOADED = {"after_upload", "in_finish"}


@pytest.mark.parametrize("point", ["after_claim", "mid_render", "after_upload", "in_finish"])
def test_a_worker_killed_at_a_crash_point_loses_nothing(site: Site, point: str) -> None:
    site.deployment.start_server("--no-worker")
    for run, rng in enumerate(seeded_runs()):
        steps, step_s = rng.randint(4, 10), rng.choice([0.02, 0.05])
        doomed = site.worker(steps, step_s, REELSERVE_FAULT=point)
        gen_id = site.submit()
        died_of_sigkill(doomed)
        # The killed attempt did not finish the task: it is still running (lease not yet
        # expired) or already back in the queue.
        assert site.status(gen_id) in ("IN_PROGRESS", "IN_QUEUE"), site.logs()
        rescuer = site.worker()
        site.wait_status(gen_id, ("COMPLETED", "FAILED", "CANCELED"))
        rescuer.stop()

        gen = site.store.get(gen_id)
        assert gen is not None
        assert gen.status.value == "COMPLETED", (gen, site.logs())
        assert gen.attempt >= 2
        assert gen.data is not None
        assert gen.data["videos"][0]["key"].endswith(f"-{gen.attempt}.mp4")
        assert record_of(site, gen_id)["usage"]["total"] == gen.price
        tally = site.check()
        if point not in UPLOADED:
            assert tally.orphans == []
        record(f"SIGKILL {point}", site.backend, run, tally)
