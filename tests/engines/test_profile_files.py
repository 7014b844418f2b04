"""Profile files: the built-ins load, and every broken profile names its key and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelserve.core.render import Mode
from reelserve.engines import available_profiles, get_profile
from reelserve.engines.profile_files import ProfileError, parse_profile
from reelserve.engines.speed import SpeedOptions

# A valid profile that the broken cases below change one thing in.
GOOD = """
description = "test"

[modes.text-to-video]
family = "ltx2"
checkpoint = "owner/ltx"
memory = "group_offload"
speed = { attention_backend = "sage", fp8_storage = true, step_cache = "mag" }
render_size = { long_side = 640 }

[modes.text-to-video.standard]
steps = 8
guidance = 1.0
distilled = true

[modes.text-to-video.pro]
checkpoint = { hub = "owner/ltx-full", revision = "v1" }
steps = 40
guidance = 3.0

[modes.image-to-video]
like = "text-to-video"

[modes.image-to-video.pro]
steps = 30

[modes.motion-control]
family = "wan_animate"
checkpoint = { path = "weights/animate" }
segment_frames = 77
steps = 10
guidance = 1.0
"""


def test_every_built_in_profile_loads() -> None:
    for name in available_profiles():
        profile = get_profile(name)
        assert profile.name == name
        assert profile.modes, name
        assert profile.description, name


def test_the_ltx2_profile_splits_qualities_and_has_native_audio() -> None:
    ltx2 = get_profile("ltx2")
    text = ltx2.modes[Mode.TEXT]
    assert text.standard.checkpoint != text.pro.checkpoint
    assert text.standard.quality.standard.distilled
    assert text.pro.quality.pro.steps > text.standard.quality.standard.steps
    assert ltx2.modes[Mode.IMAGE] == text == ltx2.modes[Mode.FIRST_LAST]
    assert text.audio == "native"
    motion = ltx2.modes[Mode.MOTION]
    # One Wan-Animate-2 checkpoint, sampled distilled for standard and base for pro.
    assert motion.standard == motion.pro
    assert motion.standard.quality.standard.distilled
    assert not motion.standard.quality.pro.distilled


def test_the_wan_profile_is_silent() -> None:
    wan = get_profile("wan")
    assert {spec.audio for spec in wan.modes.values()} == {"none"}
    assert all(spec.checkpoint.hub for spec in wan.specs())
    assert wan.modes[Mode.TEXT].standard.family == "wan"


def test_a_profile_file_with_inheritance_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    profile = get_profile(str(path))
    assert profile.name == "mine"
    assert set(profile.modes) == {Mode.TEXT, Mode.IMAGE, Mode.MOTION}
    text = profile.modes[Mode.TEXT]
    assert text.standard.memory == text.pro.memory == "group_offload"
    assert text.standard.speed == SpeedOptions(
        attention_backend="sage", fp8_storage=True, step_cache="mag"
    )
    assert text.standard.render_size.long_side == 640
    assert (text.pro.checkpoint.hub, text.pro.checkpoint.revision) == ("owner/ltx-full", "v1")
    assert text.standard.quality.standard.steps == 8
    assert text.pro.quality.pro.steps == 40
    # ``like`` copies the mode; the quality table it sets overrides one key only.
    image = profile.modes[Mode.IMAGE]
    assert image.pro.quality.pro.steps == 30
    assert image.pro.checkpoint == text.pro.checkpoint
    assert image.standard == text.standard
    motion = profile.modes[Mode.MOTION]
    assert motion.standard.checkpoint.path == tmp_path / "weights" / "animate"
    assert motion.standard.segment_frames == 77
    assert motion.audio == "none"
    assert not profile.random_weights


@pytest.mark.parametrize(
    ("old", "new", "path", "rule"),
    [
        ("steps = 8", "steps = 0", "modes.text-to-video.standard.steps", "positive integer"),
        ("steps = 8", 'steps = "8"', "modes.text-to-video.standard.steps", "positive integer"),
        ("guidance = 1.0\ndistilled", "guidance = 0.5\ndistilled", "standard.guidance", "1.0"),
        ('family = "ltx2"', 'family = "sora"', "modes.text-to-video.family", "one of"),
        ('memory = "group_offload"', 'memory = "swap"', "text-to-video.memory", "one of"),
        ("fp8_storage = true", 'fp8_storage = "yes"', "speed.fp8_storage", "true or false"),
        ('step_cache = "mag"', 'step_cache = "tea"', "speed.step_cache", "one of"),
        ('attention_backend = "sage"', "warp = 1", "speed.warp", "unknown key"),
        (
            "render_size = { long_side = 640 }",
            "render_size = { long_side = -1 }",
            "render_size.long_side",
            "positive integer",
        ),
        ('description = "test"', 'description = "test"\ncolour = "red"', "colour", "unknown key"),
        (
            "distilled = true",
            "distiled = true",
            "modes.text-to-video.standard.distiled",
            "unknown key",
        ),
        (
            "[modes.image-to-video]",
            "[modes.video-to-video]",
            "modes.video-to-video",
            "unknown mode",
        ),
        (
            'like = "text-to-video"',
            'like = "first-last-frame"',
            "image-to-video.like",
            "another mode",
        ),
        (
            'checkpoint = "owner/ltx"',
            'checkpoint = "not a hub id"',
            "text-to-video.checkpoint",
            "hub id",
        ),
        (
            'checkpoint = "owner/ltx"',
            'checkpoint = { hub = "a/b", path = "/x" }',
            "text-to-video.checkpoint",
            "exactly one",
        ),
        (
            'checkpoint = "owner/ltx"',
            'checkpoint = { path = "/x", revision = "v" }',
            "checkpoint.revision",
            "hub only",
        ),
        (
            'family = "wan_animate"',
            'family = "wan_animate"\nlike = "motion-control"',
            "modes.motion-control.like",
            "loop",
        ),
        ("segment_frames = 77", "segment_frames = 80", "segment_frames", "4k+1"),
        ("segment_frames = 77", 'audio = "native"', "modes.motion-control.audio", "reference"),
        ('family = "ltx2"', 'family = "ltx2"\naudio = "loud"', "text-to-video.audio", "one of"),
        ("steps = 10\n", "", "modes.motion-control.standard.steps", "required"),
    ],
)
def test_a_broken_profile_names_the_key_and_the_rule(
    old: str, new: str, path: str, rule: str
) -> None:
    assert old in GOOD
    with pytest.raises(ProfileError) as caught:
        parse_profile(GOOD.replace(old, new, 1), "broken")
    message = str(caught.value)
    assert message.startswith("profile broken: ")
    assert path in caught.value.path, message
    assert rule in caught.value.rule, message


def test_tiny_checkpoints_need_a_family_with_a_tiny_build() -> None:
    text = GOOD.replace('checkpoint = "owner/ltx"', 'checkpoint = { tiny = "x" }')
    assert parse_profile(text, "ok").random_weights
    broken = GOOD.replace('checkpoint = { path = "weights/animate" }', '{ tiny = "x" }')
    with pytest.raises(ProfileError):
        parse_profile(broken, "broken")
    wan = text.replace('family = "ltx2"', 'family = "wan"')
    with pytest.raises(ProfileError, match=r"modes\.text-to-video\.checkpoint\.tiny: family 'wan'"):
        parse_profile(wan, "broken")


def test_native_audio_needs_a_family_that_makes_sound() -> None:
    silent = GOOD.replace('family = "ltx2"', 'family = "wan"\naudio = "native"', 1)
    with pytest.raises(ProfileError, match=r"modes\.text-to-video\.audio: 'native' needs"):
        parse_profile(silent, "broken")
    track = GOOD.replace('family = "ltx2"', 'family = "wan"\naudio = "silent_track"', 1)
    assert parse_profile(track, "ok").modes[Mode.TEXT].audio == "silent_track"


def test_not_toml_and_missing_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="profile bad: not valid TOML"):
        parse_profile("modes = [", "bad")
    with pytest.raises(ProfileError, match="no profile file at"):
        get_profile(str(tmp_path / "absent.toml"))
