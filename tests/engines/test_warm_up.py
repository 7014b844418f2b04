"""Warm-up: loads on CPU by default, and its renders leave later jobs unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reelserve.core.render import Mode
from reelserve.engines.ltx2 import LTX2Engine
from reelserve.engines.profiles import QualityTable, Sampling
from reelserve.engines.wan_animate import WanAnimateEngine
from reelserve.engines.warmup import should_render, warm_up_job, warm_up_qualities
from tests.engines.engine_testkit import ProgressLog, make_job
from tests.engines.test_ltx2_engine import CallCounter


def test_warm_up_renders_by_default_only_on_a_gpu() -> None:
    assert should_render(None, torch.device("cuda"))
    assert not should_render(None, torch.device("cpu"))
    assert should_render(True, torch.device("cpu"))
    assert not should_render(False, torch.device("cuda"))


def test_one_warm_up_per_distinct_sampling_row() -> None:
    fast = Sampling(steps=8, guidance_scale=1.0, distilled=True)
    assert warm_up_qualities(QualityTable(standard=fast, pro=fast)) == ["standard"]
    guided = Sampling(steps=40, guidance_scale=4.0)
    assert warm_up_qualities(QualityTable(standard=fast, pro=guided)) == ["standard", "pro"]


@pytest.mark.parametrize("mode", list(Mode))
def test_warm_up_jobs_are_five_seconds_of_720p_with_their_inputs(mode: Mode) -> None:
    job = warm_up_job(mode, "pro")
    # 5 s at 24 fps is 121 frames: 8k+1 for LTX-2 and 4k+1 for Wan.
    assert (job.width, job.height, job.num_frames, job.fps) == (1280, 720, 121, 24)
    assert job.quality == "pro"
    assert (job.image is not None) == (mode is not Mode.TEXT)
    assert (job.end_image is not None) == (mode is Mode.FIRST_LAST)
    if mode is Mode.MOTION:
        assert job.reference_frames is not None
        assert len(job.reference_frames) == job.num_frames


@pytest.mark.slow
def test_ltx2_warm_up_on_cpu_only_loads(ltx2: LTX2Engine) -> None:
    counter = CallCounter(ltx2.denoiser())
    try:
        ltx2.warm_up()
    finally:
        counter.remove()
    assert ltx2.loaded
    assert counter.calls == 0


@pytest.mark.slow
def test_ltx2_warm_up_renders_each_mode_and_leaves_jobs_unchanged(ltx2: LTX2Engine) -> None:
    job = make_job(Mode.FIRST_LAST)
    before = ltx2.render(job, ProgressLog())
    counter = CallCounter(ltx2.denoiser())
    try:
        ltx2.warm_up(render=True)
    finally:
        counter.remove()
    # One step per mode and distinct quality; the tiny profile's pro quality is guided, which
    # LTX-2 evaluates as one batched call per step.
    qualities = warm_up_qualities(ltx2.spec.quality)
    assert counter.calls == len(ltx2.modes) * len(qualities)
    after = ltx2.render(job, ProgressLog())
    np.testing.assert_array_equal(after.frames, before.frames)


@pytest.mark.slow
def test_wan_animate_warm_up_renders_and_leaves_jobs_unchanged(
    wan_animate: WanAnimateEngine,
) -> None:
    job = make_job(Mode.MOTION)
    before = wan_animate.render(job, ProgressLog())
    counter = CallCounter(wan_animate.denoiser())
    try:
        wan_animate.warm_up(render=True)
    finally:
        counter.remove()
    # One segment per distinct quality: a reference pass, then one step per guidance branch.
    table = wan_animate.spec.quality
    samplings = [table.for_quality(q) for q in warm_up_qualities(table)]
    branches = [1 if s.distilled or s.guidance_scale <= 1 else 2 for s in samplings]
    assert counter.calls == sum(1 + b for b in branches)
    after = wan_animate.render(job, ProgressLog())
    np.testing.assert_array_equal(after.frames, before.frames)
