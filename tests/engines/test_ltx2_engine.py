"""LTX-2 engine on the tiny checkpoint: text, image and first+last frame, with audio."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from reelserve.core.errors import GenerationFailed, JobCanceled, LeaseLost, ReelserveError
from reelserve.core.render import Mode, Rendition
from reelserve.engines.libraries import diffusers
from reelserve.engines.ltx2 import LTX2Engine
from tests.engines.engine_testkit import (
    ProgressLog,
    assert_well_formed_progress,
    make_job,
    pattern,
)

# Builds and runs (tiny) model pipelines.
pytestmark = pytest.mark.slow

LTX2_MODES = [Mode.TEXT, Mode.IMAGE, Mode.FIRST_LAST]


class CallCounter:
    """Counts forward calls of a module while installed."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self._handle = module.register_forward_pre_hook(self._count)

    def _count(self, module: torch.nn.Module, args: object) -> None:
        self.calls += 1

    def remove(self) -> None:
        self._handle.remove()


@pytest.mark.parametrize("mode", LTX2_MODES)
def test_render_returns_frames_and_audio_for_the_job(ltx2: LTX2Engine, mode: Mode) -> None:
    job = make_job(mode)
    progress = ProgressLog()

    result = ltx2.render(job, progress)

    frames = result.frames
    assert frames.dtype == np.uint8
    # The tiny profile renders 17 frames at 64 px on the long side, keeping 16:9.
    assert frames.shape == (17, 36, 64, 3)
    assert frames.std() > 0, "a flat video means nothing was decoded"
    duration = job.num_frames / job.fps
    assert len(frames) / result.fps == pytest.approx(duration)
    assert_audio_covers(result, duration)
    assert_well_formed_progress(progress.values)


def assert_audio_covers(result: Rendition, duration: float) -> None:
    assert result.audio is not None
    assert result.sample_rate == 16000
    assert result.audio.dtype == np.float32
    channels, samples = result.audio.shape
    assert channels == 2
    assert samples / result.sample_rate == pytest.approx(duration, abs=0.05)
    assert np.abs(result.audio).max() <= 1.0
    assert result.audio.std() > 0


@pytest.mark.parametrize(("width", "height"), [(720, 1280), (960, 960)])
def test_render_keeps_the_aspect_ratio(ltx2: LTX2Engine, width: int, height: int) -> None:
    result = ltx2.render(make_job(Mode.TEXT, width=width, height=height), ProgressLog())
    _, rendered_height, rendered_width, _ = result.frames.shape
    assert max(rendered_width, rendered_height) == 64
    assert rendered_width / rendered_height == pytest.approx(width / height, rel=0.03)


def test_a_ten_second_job_keeps_its_duration(ltx2: LTX2Engine) -> None:
    job = make_job(Mode.TEXT, num_frames=241)
    result = ltx2.render(job, ProgressLog())
    assert len(result.frames) / result.fps == pytest.approx(241 / 24)
    assert_audio_covers(result, 241 / 24)


def test_no_audio_when_not_asked(ltx2: LTX2Engine) -> None:
    result = ltx2.render(make_job(Mode.TEXT, generate_audio=False), ProgressLog())
    assert result.audio is None
    assert result.sample_rate is None


def test_same_seed_same_video_other_seed_other_video(ltx2: LTX2Engine) -> None:
    job = make_job(Mode.TEXT, seed=11)
    first = ltx2.render(job, ProgressLog())
    again = ltx2.render(job, ProgressLog())
    other = ltx2.render(replace(job, seed=12), ProgressLog())
    assert np.array_equal(first.frames, again.frames)
    assert not np.array_equal(first.frames, other.frames)
    assert np.array_equal(audio_of(first), audio_of(again))
    assert not np.array_equal(audio_of(first), audio_of(other))


def audio_of(result: Rendition) -> np.ndarray:
    assert result.audio is not None
    return result.audio


def test_without_a_seed_each_render_differs(ltx2: LTX2Engine) -> None:
    job = make_job(Mode.TEXT, seed=None)
    assert not np.array_equal(
        ltx2.render(job, ProgressLog()).frames, ltx2.render(job, ProgressLog()).frames
    )


def test_conditioning_images_reach_the_model(ltx2: LTX2Engine) -> None:
    start = make_job(Mode.IMAGE)
    other_start = replace(start, image=pattern(360, 640, seed=9))
    assert not np.array_equal(
        ltx2.render(start, ProgressLog()).frames, ltx2.render(other_start, ProgressLog()).frames
    )
    first_last = make_job(Mode.FIRST_LAST)
    other_end = replace(first_last, end_image=pattern(360, 640, seed=9))
    assert not np.array_equal(
        ltx2.render(first_last, ProgressLog()).frames,
        ltx2.render(other_end, ProgressLog()).frames,
    )


def test_pro_quality_runs_more_guided_steps(ltx2: LTX2Engine) -> None:
    counter = CallCounter(ltx2.denoiser())
    try:
        ltx2.render(make_job(Mode.TEXT, quality="standard"), ProgressLog())
        standard_calls = counter.calls
        ltx2.render(make_job(Mode.TEXT, quality="pro"), ProgressLog())
        pro_calls = counter.calls - standard_calls
    finally:
        counter.remove()
    sampling = ltx2.spec.quality
    assert standard_calls == sampling.standard.steps  # distilled: no unconditional pass
    # Classifier-free guidance batches both branches into one call per step.
    assert pro_calls == sampling.pro.steps


@pytest.mark.parametrize("error", [JobCanceled, LeaseLost])
def test_an_error_from_progress_stops_the_render(
    ltx2: LTX2Engine, error: type[ReelserveError]
) -> None:
    job = make_job(Mode.TEXT, quality="pro")
    total_steps = ltx2.spec.quality.pro.steps
    # Report 1 is the start, 2 the first denoising step: stop there.
    progress = ProgressLog(raise_on=2, error=error)
    counter = CallCounter(ltx2.denoiser())
    try:
        with pytest.raises(error):
            ltx2.render(job, progress)
    finally:
        counter.remove()
    assert counter.calls == 1 < total_steps
    assert 1.0 not in progress.values


def test_a_cancel_before_any_work_runs_nothing(ltx2: LTX2Engine) -> None:
    counter = CallCounter(ltx2.denoiser())
    try:
        with pytest.raises(JobCanceled):
            ltx2.render(make_job(Mode.TEXT), ProgressLog(raise_on=1, error=JobCanceled))
    finally:
        counter.remove()
    assert counter.calls == 0


def test_a_pipeline_error_becomes_a_safe_failure(ltx2: LTX2Engine) -> None:
    def explode(module: torch.nn.Module, args: object) -> None:
        raise RuntimeError("CUDA error in /opt/secret/kernels.cu line 12")

    handle = ltx2.denoiser().register_forward_pre_hook(explode)
    try:
        with pytest.raises(GenerationFailed) as failed:
            ltx2.render(make_job(Mode.TEXT), ProgressLog())
    finally:
        handle.remove()
    assert "/opt" not in failed.value.message
    assert "Traceback" not in failed.value.message
    # The engine is still usable afterwards.
    assert ltx2.render(make_job(Mode.TEXT), ProgressLog()).frames.size > 0


def test_missing_conditioning_image_fails_cleanly(ltx2: LTX2Engine) -> None:
    with pytest.raises(GenerationFailed, match="end image"):
        ltx2.render(make_job(Mode.FIRST_LAST, end_image=None), ProgressLog())
    with pytest.raises(GenerationFailed, match="motion-control"):
        ltx2.render(make_job(Mode.MOTION), ProgressLog())


def test_pipelines_stay_resident_between_jobs(
    ltx2: LTX2Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    transformer = ltx2.denoiser()

    def no_reload(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pipeline was loaded again")

    monkeypatch.setattr(diffusers().LTX2Pipeline, "from_pretrained", no_reload)
    for mode in LTX2_MODES:
        ltx2.render(make_job(mode), ProgressLog())
    assert ltx2.denoiser() is transformer
