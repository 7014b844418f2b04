"""What a served model is: its input schema, how a body becomes a plan, its price.

A ``Plan`` is everything the service and the worker need to know about one request,
derived once at create time from the validated body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from reelserve.core.pricing import PriceTable
from reelserve.core.render import Mode

# Marks an input URL that points at a file uploaded with the request: "blob:<key>".
BLOB_REF_PREFIX = "blob:"
MEDIA_FIELDS = ("image_url", "end_image_url", "video_url")


@dataclass(frozen=True)
class MediaLimits:
    image_max_bytes: int = 10_000_000
    image_min_side: int = 300
    image_max_ratio: float = 2.5
    video_max_bytes: int = 100_000_000
    video_min_seconds: float = 3.0
    video_max_seconds_image_orientation: float = 10.0
    video_max_seconds_video_orientation: float = 30.0

    def video_max_seconds(self, character_orientation: str) -> float:
        if character_orientation == "image":
            return self.video_max_seconds_image_orientation
        return self.video_max_seconds_video_orientation


@dataclass(frozen=True)
class UploadedMedia:
    """A file part stored and probed by the API before the plan is made."""

    key: str
    kind: str  # "image" | "video"
    seconds: float | None = None  # videos only


@dataclass(frozen=True)
class Plan:
    mode: Mode
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    fps: int
    # Text and image modes: the requested seconds. Motion control: the reference's
    # length when known at create (upload), else the longest allowed (a reserve).
    seconds: float
    seconds_known: bool
    generate_audio: bool
    quality: str
    seed: int | None
    character_orientation: str
    keep_original_sound: bool
    media: Mapping[str, str] = field(default_factory=dict)  # field → URL or blob ref

    @property
    def num_frames(self) -> int:
        return frames_for(self.mode, self.seconds, self.fps)


def frames_for(mode: Mode, seconds: float, fps: int) -> int:
    """Output frame count: 5 s at 24 fps is 121 frames (5.04 s), as the platform's clips.

    Motion control follows the reference's own length instead.
    """
    if mode is Mode.MOTION:
        return max(1, round(seconds * fps))
    return round(seconds * fps) + 1


@dataclass(frozen=True)
class Normalized:
    input: dict[str, Any]  # the echoed, normalised body (api.md §2)
    plan: Plan


Normalizer = Callable[[Mapping[str, Any], Mapping[str, UploadedMedia], MediaLimits], Normalized]


@dataclass(frozen=True)
class ModelSpec:
    """One served route: ``{provider}/{model}``."""

    route: str
    schema: type[BaseModel]
    modes: frozenset[Mode]
    normalize: Normalizer
    limits: MediaLimits = field(default_factory=MediaLimits)

    def price(self, plan: Plan, table: PriceTable) -> int:
        return table.price(plan.mode, plan.quality, plan.generate_audio, plan.seconds)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    out = {f: getattr(plan, f) for f in plan.__dataclass_fields__}
    out["mode"] = plan.mode.value
    out["media"] = dict(plan.media)
    return out


def plan_from_dict(raw: Mapping[str, Any]) -> Plan:
    values = dict(raw)
    values["mode"] = Mode(values["mode"])
    return Plan(**values)
