"""``kling-ai/kling-v2.6``: text, image, first+last frame and motion control (api.md §2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reelserve.core.errors import InvalidInput
from reelserve.core.render import Mode
from reelserve.core.spec import (
    BLOB_REF_PREFIX,
    MEDIA_FIELDS,
    MediaLimits,
    ModelSpec,
    Normalized,
    Plan,
    UploadedMedia,
)
from reelserve.core.validation import validate

ROUTE = "kling-ai/kling-v2.6"
FPS = 24
SIZES: dict[str, tuple[int, int]] = {
    "16:9": (1280, 720),
    "9:16": (720, 1280),
    "1:1": (960, 960),  # same pixel count as 720p
}


class KlingV26Input(BaseModel):
    """Create body of ``kling-ai/kling-v2.6``. Unknown keys are kept and echoed."""

    model_config = ConfigDict(extra="allow", title="KlingV26Input")

    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=2500,
        description="Required except in motion control.",
    )
    feature: Literal["text-image-to-video", "motion-control"] = "text-image-to-video"
    image_url: str | None = Field(
        default=None, description="Start frame; the character image in motion control."
    )
    end_image_url: str | None = Field(default=None, description="Last frame; needs image_url.")
    video_url: str | None = Field(
        default=None, description="Motion reference video; its presence means motion control."
    )
    generate_audio: bool = True
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    negative_prompt: str | None = Field(default=None, max_length=2500)
    character_orientation: Literal["image", "video"] = "video"
    quality: Literal["standard", "pro"] = "standard"
    keep_original_sound: bool = True
    duration: int = Field(default=5, description="5 or 10 seconds (ignored in motion control).")
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    webhook_url: str | None = Field(
        default=None,
        description="(ours) Receives a POST of the record, signed in the Standard Webhooks "
        "format, on each terminal status.",
    )

    @field_validator("duration")
    @classmethod
    def _duration_is_5_or_10(cls, value: int) -> int:
        if value not in (5, 10):
            raise ValueError("must be 5 or 10")
        return value


def _mode_of(body: KlingV26Input) -> Mode:
    if body.video_url is not None or body.feature == "motion-control":
        return Mode.MOTION
    if body.image_url is not None:
        return Mode.FIRST_LAST if body.end_image_url is not None else Mode.IMAGE
    return Mode.TEXT


def _require_consistent(body: KlingV26Input, mode: Mode) -> None:
    if mode is Mode.MOTION:
        if body.video_url is None:
            raise InvalidInput(
                "video_url: is required when feature is motion-control", field="video_url"
            )
        if body.image_url is None:
            raise InvalidInput(
                "image_url: a character image is required in motion control", field="image_url"
            )
        if body.end_image_url is not None:
            raise InvalidInput(
                "end_image_url: not allowed in motion control", field="end_image_url"
            )
        return
    if body.end_image_url is not None and body.image_url is None:
        raise InvalidInput("end_image_url: needs image_url", field="end_image_url")
    if body.prompt is None:
        raise InvalidInput("prompt: is required", field="prompt")


def normalize_kling(
    raw: Mapping[str, Any],
    uploads: Mapping[str, UploadedMedia],
    limits: MediaLimits,
    *,
    motion_only: bool = False,
) -> Normalized:
    """Validate a create body and derive the echoed input and the plan."""
    clashing = [name for name in uploads if raw.get(name) is not None]
    if clashing:
        raise InvalidInput(
            f"{clashing[0]}: give either a URL or a file, not both", field=clashing[0]
        )
    merged = dict(raw)
    for name, upload in uploads.items():
        merged[name] = BLOB_REF_PREFIX + upload.key
    body = validate(KlingV26Input, merged)
    mode = _mode_of(body)
    if motion_only and mode is not Mode.MOTION:
        raise InvalidInput("video_url: is required by this model", field="video_url")
    _require_consistent(body, mode)

    if mode is Mode.MOTION:
        video = uploads.get("video_url")
        if video is not None and video.seconds is not None:
            seconds, known = video.seconds, True
        else:
            seconds, known = limits.video_max_seconds(body.character_orientation), False
    else:
        seconds, known = float(body.duration), True

    width, height = SIZES[body.aspect_ratio]
    echoed = body.model_dump(mode="json", exclude_none=False)
    if mode is Mode.MOTION:
        echoed["feature"] = "motion-control"
    echoed["n"] = 1
    media = {name: echoed[name] for name in MEDIA_FIELDS if echoed.get(name) is not None}
    # Optional fields left unset stay out of the echo, as the platform does; defaults are in.
    for name in (
        "image_url",
        "end_image_url",
        "video_url",
        "negative_prompt",
        "seed",
        "webhook_url",
        "prompt",
    ):
        if echoed.get(name) is None:
            echoed.pop(name, None)
    plan = Plan(
        mode=mode,
        prompt=body.prompt or "",
        negative_prompt=body.negative_prompt,
        width=width,
        height=height,
        fps=FPS,
        seconds=seconds,
        seconds_known=known,
        generate_audio=body.generate_audio,
        quality=body.quality,
        seed=body.seed,
        character_orientation=body.character_orientation,
        keep_original_sound=body.keep_original_sound,
        media=media,
    )
    return Normalized(input=echoed, plan=plan)


SPEC = ModelSpec(
    route=ROUTE,
    schema=KlingV26Input,
    modes=frozenset(Mode),
    normalize=normalize_kling,
)
