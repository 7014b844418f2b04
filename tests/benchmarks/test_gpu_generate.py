"""benchmarks/gpu_generate.py --tiny: the GPU benchmark's code path, run on CPU with tiny models."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?"

# Builds tiny checkpoints and renders through the engines in a child process.
pytestmark = pytest.mark.slow


def test_tiny_run_prints_a_row_per_setting_and_the_speed_up() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_generate.py"),
            "--tiny",
            "--families",
            "ltx2",
            "--modes",
            "text",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "encode" in out
    assert "TFLOP/s" in out
    for setting in ("stock", "reelserve"):
        # encode, denoise, decode, mux, other, total, first call: numbers; peak: n/a on CPU;
        # TFLOP/s: a number (counted by FlopCounterMode).
        row = re.search(
            rf"^ltx2\s+text-to-video\s+{setting}((?:\s+{NUMBER}){{7}})\s+n/a\s+({NUMBER})\s*$",
            out,
            re.MULTILINE,
        )
        assert row, out
        encode, denoise, decode, mux, other, total, _ = map(float, row.group(1).split())
        assert denoise > 0
        assert decode > 0
        assert mux > 0
        assert total == pytest.approx(encode + denoise + decode + mux + other, abs=0.02)
        assert float(row.group(2)) > 0
    assert re.search(rf"ltx2\s+text-to-video\s+{NUMBER}x end to end", out), out
