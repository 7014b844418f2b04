"""Several processes sharing PROMETHEUS_MULTIPROC_DIR: any one's exposition sums them all.

Real processes, since prometheus_client reads the variable when first imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

COUNT = """
import os, sys
from reelserve.observability.prometheus import from_environment
metrics = from_environment(None, [], os.environ)
metrics.reserved.inc(int(sys.argv[1]))
metrics.stream_opened()
if sys.argv[2] == "exits":
    metrics.close()
"""

EXPOSE = """
import os, sys
from reelserve.observability.prometheus import from_environment
sys.stdout.write(from_environment(lambda: {}, ["m"], os.environ).exposition()[0].decode())
"""


def run(code: str, folder: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_counters_add_up_across_processes_and_dead_ones_leave_the_gauge(tmp_path: Path) -> None:
    run(COUNT, tmp_path, "20", "exits")
    run(COUNT, tmp_path, "15", "stays")  # as if still running: its stream counts
    text = run(EXPOSE, tmp_path)
    values = {
        (s.name, tuple(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("reelserve_credits_reserved_total", ())] == 35
    assert values[("reelserve_sse_streams_open", ())] == 1
    assert values[("reelserve_queue_depth", (("model", "m"),))] == 0
