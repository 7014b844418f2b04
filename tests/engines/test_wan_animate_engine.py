"""Wan-Animate-2 engine on the tiny checkpoint: a character image moved by reference frames."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from reelserve.core.errors import GenerationFailed, JobCanceled, LeaseLost, ReelserveError
from reelserve.core.render import Mode
from reelserve.engines.libraries import diffusers
from reelserve.engines.sizing import segment_count
from reelserve.engines.wan_animate import WanAnimateEngine
from tests.engines.engine_testkit import (
    ProgressLog,
    assert_well_formed_progress,
    make_job,
    pattern,
)

# Third-party warnings on the CPU path, all from torch: the transformer builds its attention
# block mask through ``create_block_mask(_compile=True)`` (deprecated flag), which imports
# torch's inductor (whose import uses the deprecated ``torch.jit.script_method``), and the
# engine runs flex attention eagerly on CPU (torch says it is unfused).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore:_compile flag on create_block_mask:DeprecationWarning",
        "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning",
        "ignore:flex_attention called without torch.compile:UserWarning",
    ),
]


def transformer_calls(engine: WanAnimateEngine, quality: str) -> int:
    """Transformer passes per render: per segment one reference pass, then each step/branch."""
    sampling = engine.spec.quality.for_quality(quality)
    frames = engine.spec.render_size.frames
    assert frames is not None
    branches = 1 if sampling.distilled else 2
    return segment_count(frames, engine.spec.segment_frames) * (1 + sampling.steps * branches)


class CallCounter:
    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self._handle = module.register_forward_pre_hook(self._count)

    def _count(self, module: torch.nn.Module, args: object) -> None:
        self.calls += 1

    def remove(self) -> None:
        self._handle.remove()


def test_motion_render_follows_the_reference_and_is_silent(wan_animate: WanAnimateEngine) -> None:
    job = make_job(Mode.MOTION)
    progress = ProgressLog()

    result = wan_animate.render(job, progress)

    assert result.frames.dtype == np.uint8
    assert result.frames.shape == (17, 36, 64, 3)
    assert result.frames.std() > 0
    # The job's length is the reference's: 120 frames at 30 fps = 96 at 24 fps = 4 s.
    assert len(result.frames) / result.fps == pytest.approx(4.0)
    assert result.audio is None
    assert result.sample_rate is None
    assert_well_formed_progress(progress.values)
    # Start, one report per transformer pass, done.
    assert len(progress.values) == transformer_calls(wan_animate, "standard") + 2


@pytest.mark.parametrize(("width", "height"), [(720, 1280), (960, 960)])
def test_motion_render_keeps_the_aspect_ratio(
    wan_animate: WanAnimateEngine, width: int, height: int
) -> None:
    job = make_job(Mode.MOTION, width=width, height=height, image=pattern(height, width, seed=1))
    _, rendered_height, rendered_width, _ = wan_animate.render(job, ProgressLog()).frames.shape
    assert max(rendered_width, rendered_height) == 64
    assert rendered_width / rendered_height == pytest.approx(width / height, rel=0.03)


def test_same_seed_same_video_other_seed_other_video(wan_animate: WanAnimateEngine) -> None:
    job = make_job(Mode.MOTION, seed=5)
    first = wan_animate.render(job, ProgressLog()).frames
    again = wan_animate.render(job, ProgressLog()).frames
    other = wan_animate.render(replace(job, seed=6), ProgressLog()).frames
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_character_orientation_changes_what_drives_the_clip(
    wan_animate: WanAnimateEngine,
) -> None:
    job = make_job(Mode.MOTION)
    follow_video = wan_animate.render(replace(job, character_orientation="video"), ProgressLog())
    keep_image = wan_animate.render(replace(job, character_orientation="image"), ProgressLog())
    assert follow_video.frames.shape == keep_image.frames.shape
    assert not np.array_equal(follow_video.frames, keep_image.frames)


@pytest.mark.parametrize("quality", ["standard", "pro"])
def test_quality_picks_distilled_or_guided_sampling(
    wan_animate: WanAnimateEngine, quality: str
) -> None:
    counter = CallCounter(wan_animate.denoiser())
    try:
        wan_animate.render(make_job(Mode.MOTION, quality=quality), ProgressLog())
    finally:
        counter.remove()
    assert counter.calls == transformer_calls(wan_animate, quality)


@pytest.mark.parametrize("error", [JobCanceled, LeaseLost])
def test_an_error_from_progress_stops_the_render_and_frees_the_hook(
    wan_animate: WanAnimateEngine, error: type[ReelserveError]
) -> None:
    transformer = wan_animate.denoiser()
    hooks_before = len(transformer._forward_pre_hooks)
    counter = CallCounter(transformer)
    # Report 1 is the start; report 3 comes just before the second transformer pass.
    progress = ProgressLog(raise_on=3, error=error)
    try:
        with pytest.raises(error):
            wan_animate.render(make_job(Mode.MOTION, quality="pro"), progress)
    finally:
        counter.remove()
    assert counter.calls == 2 < transformer_calls(wan_animate, "pro")
    assert len(transformer._forward_pre_hooks) == hooks_before
    # Nothing is left half-done: the next job renders normally.
    assert wan_animate.render(make_job(Mode.MOTION), ProgressLog()).frames.size > 0


def test_missing_inputs_fail_cleanly(wan_animate: WanAnimateEngine) -> None:
    with pytest.raises(GenerationFailed, match="reference frames"):
        wan_animate.render(make_job(Mode.MOTION, reference_frames=None), ProgressLog())
    with pytest.raises(GenerationFailed, match="text-to-video"):
        wan_animate.render(make_job(Mode.TEXT), ProgressLog())


def test_pipelines_stay_resident_between_jobs(
    wan_animate: WanAnimateEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    transformer = wan_animate.denoiser()

    def no_reload(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pipeline was loaded again")

    monkeypatch.setattr(diffusers().ModularPipeline, "from_pretrained", no_reload)
    for quality in ("standard", "pro"):
        wan_animate.render(make_job(Mode.MOTION, quality=quality), ProgressLog())
    assert wan_animate.denoiser() is transformer
