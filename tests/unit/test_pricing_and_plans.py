"""Normalising bodies into plans, and pricing them with the default table."""

from __future__ import annotations

from typing import Any

import pytest

from reelserve.core.errors import InvalidInput, UnsupportedModel
from reelserve.core.pricing import PriceTable
from reelserve.core.render import Mode
from reelserve.core.spec import UploadedMedia, frames_for, plan_from_dict, plan_to_dict
from reelserve.models import lookup

KLING = lookup("kling-ai/kling-v2.6")
MOTION = lookup("kling-ai/motion-control-v2.6")
PRICES = PriceTable()


def plan_of(
    body: dict[str, Any], uploads: dict[str, UploadedMedia] | None = None, spec: Any = KLING
) -> Any:
    return spec.normalize(body, uploads or {}, spec.limits)


@pytest.mark.parametrize(
    ("body", "mode", "size", "price"),
    [
        ({"prompt": "x"}, Mode.TEXT, (1280, 720), 20),
        ({"prompt": "x", "generate_audio": False}, Mode.TEXT, (1280, 720), 15),
        ({"prompt": "x", "quality": "pro", "duration": 10}, Mode.TEXT, (1280, 720), 70),
        (
            {"prompt": "x", "quality": "pro", "generate_audio": False, "aspect_ratio": "9:16"},
            Mode.TEXT,
            (720, 1280),
            25,
        ),
        (
            {"prompt": "x", "image_url": "https://e.com/a.png", "aspect_ratio": "1:1"},
            Mode.IMAGE,
            (960, 960),
            20,
        ),
        (
            {
                "prompt": "x",
                "image_url": "https://e.com/a.png",
                "end_image_url": "https://e.com/b.png",
            },
            Mode.FIRST_LAST,
            (1280, 720),
            20,
        ),
        (
            {"image_url": "https://e.com/a.png", "video_url": "https://e.com/r.mp4"},
            Mode.MOTION,
            (1280, 720),
            120,
        ),
        (
            {
                "image_url": "https://e.com/a.png",
                "video_url": "https://e.com/r.mp4",
                "character_orientation": "image",
            },
            Mode.MOTION,
            (1280, 720),
            40,
        ),
    ],
)
def test_mode_size_and_price(
    body: dict[str, Any], mode: Mode, size: tuple[int, int], price: int
) -> None:
    plan = plan_of(body).plan
    assert plan.mode is mode
    assert (plan.width, plan.height) == size
    assert KLING.price(plan, PRICES) == price


def test_uploaded_reference_is_priced_by_its_length() -> None:
    uploads = {
        "video_url": UploadedMedia("uploads/w/r.mp4", "video", 7.2),
        "image_url": UploadedMedia("uploads/w/c.png", "image"),
    }
    normalized = plan_of({}, uploads, MOTION)
    assert normalized.plan.seconds_known
    assert MOTION.price(normalized.plan, PRICES) == 32  # 8 started seconds × 4
    assert normalized.input["video_url"] == "blob:uploads/w/r.mp4"


def test_frames_match_the_platform() -> None:
    assert frames_for(Mode.TEXT, 5, 24) == 121
    assert frames_for(Mode.TEXT, 10, 24) == 241
    assert frames_for(Mode.MOTION, 3.5, 24) == 84


def test_echo_keeps_unknown_keys_and_sets_n() -> None:
    echoed = plan_of({"prompt": "x", "n": 4, "style": {"a": 1}, "seed": 3}).input
    assert echoed["n"] == 1
    assert echoed["style"] == {"a": 1}
    assert echoed["seed"] == 3
    assert "image_url" not in echoed


def test_plan_round_trips_through_json_shapes() -> None:
    plan = plan_of({"prompt": "x", "image_url": "https://e.com/a.png", "seed": 1}).plan
    assert plan_from_dict(plan_to_dict(plan)) == plan


def test_motion_only_route_needs_a_video() -> None:
    with pytest.raises(InvalidInput, match="video_url"):
        plan_of({"prompt": "x"}, spec=MOTION)


def test_unknown_route() -> None:
    with pytest.raises(UnsupportedModel, match=r"kling-ai/kling-v2\.6"):
        lookup("kling-ai/v3/video")


@pytest.mark.parametrize(
    ("seconds", "billed"), [(3.0, 3), (3.0000001, 3), (3.01, 4), (0.2, 1), (10.0, 10)]
)
def test_started_seconds_are_billed(seconds: float, billed: int) -> None:
    assert PRICES.price(Mode.MOTION, "standard", False, seconds) == 4 * billed
