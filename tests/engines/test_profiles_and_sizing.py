"""Profiles as data, render geometry, progress, and the package's import rule. No models."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from reelserve.core.errors import GenerationFailed, JobCanceled
from reelserve.core.render import Mode
from reelserve.engines import available_profiles, get_profile
from reelserve.engines.failures import pipeline_failures
from reelserve.engines.profiles import Profile
from reelserve.engines.progress import StageProgress
from reelserve.engines.sizing import (
    Geometry,
    align_frames,
    crop_to_target,
    place_in_box,
    plan_geometry,
    sample_indices,
    segment_count,
    target_size,
)


def test_importing_the_package_loads_no_model_library() -> None:
    code = (
        "import sys, reelserve.engines\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def tiny() -> Profile:
    return get_profile("tiny")


def test_the_built_in_profiles_and_tiny_says_it_is_noise(tiny: Profile) -> None:
    assert available_profiles() == ["ltx2", "tiny", "wan"]
    assert tiny.random_weights
    assert "random weights" in tiny.label
    assert set(tiny.modes) == set(Mode)
    assert not get_profile("ltx2").random_weights


def test_modes_of_one_family_share_a_spec(tiny: Profile) -> None:
    modes = tiny.modes
    assert modes[Mode.TEXT] == modes[Mode.IMAGE] == modes[Mode.FIRST_LAST]
    # One checkpoint for both qualities: one spec, so one engine and one copy of the weights.
    assert modes[Mode.TEXT].standard == modes[Mode.TEXT].pro
    assert modes[Mode.TEXT].standard.family == "ltx2"
    assert modes[Mode.MOTION].standard.family == "wan_animate"
    assert len(tiny.specs()) == 2


def test_quality_picks_a_sampling_row(tiny: Profile) -> None:
    quality = tiny.modes[Mode.TEXT].standard.quality
    assert quality.for_quality("pro") is quality.pro
    assert quality.for_quality("standard") is quality.standard
    assert quality.pro.steps > quality.standard.steps


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="tiny"):
        get_profile("huge")


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(1280, 720, (64, 36)), (720, 1280, (36, 64)), (960, 960, (64, 64)), (48, 30, (48, 30))],
)
def test_target_size_keeps_the_aspect_ratio(
    width: int, height: int, expected: tuple[int, int]
) -> None:
    assert target_size(width, height, 64) == expected
    assert target_size(width, height, None) == (width, height)


def test_geometry_rounds_up_to_the_model_grid_and_centres() -> None:
    geometry = plan_geometry(1280, 720, None, 32)
    assert (geometry.box_width, geometry.box_height) == (1280, 736)
    assert (geometry.left, geometry.top) == (0, 8)


@pytest.mark.parametrize(
    ("frames", "multiple", "expected"),
    [(121, 8, 121), (120, 8, 121), (17, 2, 17), (18, 2, 19), (1, 8, 1)],
)
def test_frames_round_up_to_k_times_multiple_plus_one(
    frames: int, multiple: int, expected: int
) -> None:
    assert align_frames(frames, multiple) == expected


def test_a_conditioning_image_lands_where_the_crop_reads() -> None:
    geometry = Geometry(width=6, height=4, box_width=8, box_height=8)
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    boxed = np.asarray(place_in_box(image, geometry))
    assert boxed.shape == (8, 8, 3)
    assert np.array_equal(crop_to_target(boxed[None], geometry)[0], image)
    # The margin repeats the edge instead of adding a border.
    assert np.array_equal(boxed[0, 1:-1], image[0])


def test_reference_sampling_follows_time() -> None:
    # 30 fps source, 4 s, shown as 8 frames: one every half second.
    assert sample_indices(8, 120, 30.0, 4.0) == [0, 15, 30, 45, 60, 75, 90, 105]
    # Without a rate the frames are spread evenly.
    assert sample_indices(4, 10, None, 4.0) == [0, 2, 5, 7]
    assert sample_indices(5, 2, 30.0, 1.0) == [0, 1, 1, 1, 1]


@pytest.mark.parametrize(("frames", "expected"), [(1, 0), (9, 1), (10, 2), (17, 2), (18, 3)])
def test_segment_count_matches_wan_animate_2_padding(frames: int, expected: int) -> None:
    assert segment_count(frames, segment_frames=9, overlap=1) == expected


def test_progress_never_steps_back_and_finishes_once() -> None:
    seen: list[float] = []
    stages = StageProgress(seen.append)
    stages.started()
    stages.denoised(2, 4)
    stages.denoised(1, 4)
    stages.finished()
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert seen[1] == seen[2]


def test_pipeline_errors_become_safe_failures_and_ours_pass_through() -> None:
    with pytest.raises(GenerationFailed) as failed, pipeline_failures("ltx2"):
        raise RuntimeError("weights at /srv/secret/model.safetensors are broken")
    assert "/srv" not in failed.value.message
    assert "RuntimeError" in failed.value.message
    assert isinstance(failed.value.__cause__, RuntimeError)

    with pytest.raises(JobCanceled), pipeline_failures("ltx2"):
        raise JobCanceled()
