"""Which engines stay loaded, how jobs and outputs cross the pipe, and where engines run."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from reelserve.cli.engine_host import engine_factory, runs_in_child
from reelserve.core.render import Mode, Rendition
from reelserve.media import write_mp4
from reelserve.settings import Settings
from reelserve.worker.messages import INLINE_ARRAY_BYTES, ArrayFile, stash_arrays, unstash_arrays
from reelserve.worker.residency import Residency
from tests.engines.engine_testkit import make_job
from tests.worker.engine_factories import tiny_ltx2_engine


class FakeGpu:
    """Stands in for CUDA's free-memory query (no GPU here): each loaded engine takes
    ``per_engine`` of the card."""

    def __init__(self, engines: list[object], per_engine: float) -> None:
        self.engines = engines
        self.per_engine = per_engine

    def free_fraction(self) -> float:
        loaded = sum(1 for engine in self.engines if getattr(engine, "loaded", False))
        return 1.0 - loaded * self.per_engine


@pytest.mark.slow
def test_the_least_recently_used_engine_is_released_when_the_gpu_is_full(
    models_dir: Path,
) -> None:
    first, second, third = (tiny_ltx2_engine(models_dir) for _ in range(3))
    gpu = FakeGpu([first, second, third], per_engine=0.3)
    residency = Residency([first, second, third], min_free_fraction=0.5, probe=gpu.free_fraction)

    for engine in (first, second):
        residency.before_render(engine)
        engine.warm()
    assert first.loaded
    assert second.loaded

    residency.before_render(first)  # loaded already: nothing to make room for
    assert first.loaded
    assert second.loaded

    residency.before_render(third)
    third.warm()
    assert not second.loaded, "the least recently used engine makes room"
    assert first.loaded
    assert third.loaded


@pytest.mark.slow
def test_nothing_is_released_without_a_gpu(models_dir: Path) -> None:
    engines = [tiny_ltx2_engine(models_dir) for _ in range(2)]
    residency = Residency(engines, min_free_fraction=0.5, probe=lambda: None)
    residency.before_render(engines[0])
    engines[0].warm()
    residency.before_render(engines[1])
    assert engines[0].loaded


def test_large_arrays_travel_as_files_and_small_ones_inline(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (40, 120, 160, 3), dtype=np.uint8)
    assert frames.nbytes > INLINE_ARRAY_BYTES
    audio = np.zeros((2, 1000), dtype=np.float32)
    rendition = Rendition(frames=frames, fps=24.0, audio=audio, sample_rate=16000)

    stashed = stash_arrays(rendition, tmp_path, "out")

    assert isinstance(stashed.frames, ArrayFile)
    assert Path(stashed.frames.path).parent == tmp_path
    assert stashed.audio is audio
    loaded = unstash_arrays(stashed)
    np.testing.assert_array_equal(loaded.frames, frames)
    assert (loaded.fps, loaded.sample_rate) == (24.0, 16000)


def test_mapped_frames_outlive_their_file_and_encode(tmp_path: Path) -> None:
    # The supervisor deletes the job's folder as soon as the output is mapped.
    frames = np.random.default_rng(1).integers(0, 256, (24, 144, 256, 3), dtype=np.uint8)
    (tmp_path / "job").mkdir()
    stashed = stash_arrays(Rendition(frames=frames, fps=24.0), tmp_path / "job", "out")
    assert isinstance(stashed.frames, ArrayFile)
    loaded = unstash_arrays(stashed)
    shutil.rmtree(tmp_path / "job")

    info = write_mp4(
        tmp_path / "clip.mp4",
        loaded.frames,
        None,
        None,
        width=256,
        height=144,
        num_frames=24,
        fps=24,
    )

    assert (info.width, info.height, info.has_audio) == (256, 144, False)
    np.testing.assert_array_equal(loaded.frames, frames)


def test_a_motion_job_sends_its_reference_video_as_a_file(tmp_path: Path) -> None:
    job = make_job(Mode.MOTION)
    stashed = stash_arrays(job, tmp_path, "in")
    assert isinstance(stashed.reference_frames, ArrayFile)
    assert stashed.image is job.image  # 360x640 RGB: small enough to pickle
    restored = unstash_arrays(stashed)
    assert job.reference_frames is not None
    np.testing.assert_array_equal(restored.reference_frames, job.reference_frames)


@pytest.mark.parametrize(
    ("profile", "choice", "child"),
    [
        ("tiny", "auto", False),
        ("fake", "auto", False),
        ("ltx2", "auto", True),
        ("wan", "auto", True),
        ("tiny", "child", True),
        ("ltx2", "inline", False),
    ],
)
def test_where_engines_run(profile: str, choice: str, child: bool) -> None:
    assert runs_in_child(Settings(profile=profile, engine_process=choice)) is child


def test_an_unknown_engine_process_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="engine_process must be one of auto, child, inline"):
        runs_in_child(Settings(engine_process="thread"))


def test_the_child_opens_the_profile_with_the_production_factory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    factory = engine_factory(settings)
    assert factory.target == "reelserve.engines:open_engines"
    assert factory.kwargs == {"profile_name": "tiny", "models_dir": tmp_path / "models"}
    fake = engine_factory(replace(settings, profile="fake", fake_steps=3))
    engines = fake.open()
    assert set(engines) == set(Mode)
    assert engines[Mode.TEXT].name == "fake"
