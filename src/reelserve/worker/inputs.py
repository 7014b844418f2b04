"""Bring a task's media in: uploaded blobs or safely fetched URLs, checked by decoding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reelserve.core.render import Audio, Frames
from reelserve.core.spec import BLOB_REF_PREFIX, MediaLimits, Plan
from reelserve.media import (
    fetch_to_file,
    load_image,
    probe_image,
    probe_video,
    read_audio,
    read_video,
)

# (blob key, destination) → copies the blob there (or returns its local path).
BlobReader = Callable[[str, Path], Path]


@dataclass(frozen=True)
class FetchPolicy:
    timeout_s: float
    allow_private: bool


@dataclass(frozen=True)
class Inputs:
    image: Frames | None = None
    end_image: Frames | None = None
    reference_frames: Frames | None = None
    reference_fps: float | None = None
    reference_seconds: float | None = None
    reference_audio: tuple[Audio, int] | None = None


def _materialise(
    field: str,
    value: str,
    workdir: Path,
    max_bytes: int,
    read_blob: BlobReader,
    policy: FetchPolicy,
) -> Path:
    dest = workdir / field
    if value.startswith(BLOB_REF_PREFIX):
        return read_blob(value.removeprefix(BLOB_REF_PREFIX), dest)
    return fetch_to_file(
        value,
        dest,
        field=field,
        max_bytes=max_bytes,
        timeout_s=policy.timeout_s,
        allow_private=policy.allow_private,
    ).path


def prepare_inputs(
    plan: Plan,
    limits: MediaLimits,
    workdir: Path,
    read_blob: BlobReader,
    policy: FetchPolicy,
    on_step: Callable[[float], None],
) -> Inputs:
    """Decode every media input of the plan; raises InvalidInput naming the field."""
    images: dict[str, Frames] = {}
    fields = [name for name in ("image_url", "end_image_url", "video_url") if name in plan.media]
    reference: tuple[Frames, float] | None = None
    seconds = audio = None
    for done, name in enumerate(fields):
        if name == "video_url":
            path = _materialise(
                name, plan.media[name], workdir, limits.video_max_bytes, read_blob, policy
            )
            info = probe_video(
                path,
                field=name,
                max_bytes=limits.video_max_bytes,
                min_seconds=limits.video_min_seconds,
                max_seconds=limits.video_max_seconds(plan.character_orientation),
            )
            seconds = info.duration
            # Engines resample anyway; half the output size keeps a 30 s reference in memory.
            reference = read_video(
                path,
                max_frames=max(1, round(seconds * plan.fps)),
                width=plan.width // 2 // 2 * 2,
                height=plan.height // 2 // 2 * 2,
            )
            if plan.keep_original_sound:
                audio = read_audio(path)
        else:
            path = _materialise(
                name, plan.media[name], workdir, limits.image_max_bytes, read_blob, policy
            )
            probe_image(path, field=name, max_bytes=limits.image_max_bytes)
            images[name] = load_image(path, width=plan.width, height=plan.height)
        on_step((done + 1) / len(fields))
    return Inputs(
        image=images.get("image_url"),
        end_image=images.get("end_image_url"),
        reference_frames=reference[0] if reference else None,
        reference_fps=reference[1] if reference else None,
        reference_seconds=seconds,
        reference_audio=audio,
    )
