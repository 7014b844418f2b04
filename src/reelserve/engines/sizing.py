"""Render geometry: the internal size an engine renders at and how it maps back. Pure numpy.

An engine picks a *target* size (the job's size, or smaller with the same aspect ratio when the
profile reduces it), renders at the smallest *box* the model accepts that covers the target,
and centre-crops the box back to the target. Conditioning images are placed in the box the
same way (centred, edge-padded), so the crop shows exactly what they showed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from reelserve.core.render import Frames


@dataclass(frozen=True)
class Geometry:
    """Where the target sits inside the rendered box."""

    width: int
    height: int
    box_width: int
    box_height: int

    @property
    def left(self) -> int:
        return (self.box_width - self.width) // 2

    @property
    def top(self) -> int:
        return (self.box_height - self.height) // 2


def align_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def target_size(width: int, height: int, long_side: int | None) -> tuple[int, int]:
    """The job's size, scaled down so its long side is ``long_side`` (never scaled up)."""
    if long_side is None or max(width, height) <= long_side:
        return width, height
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def plan_geometry(width: int, height: int, long_side: int | None, multiple: int) -> Geometry:
    target_width, target_height = target_size(width, height, long_side)
    return Geometry(
        width=target_width,
        height=target_height,
        box_width=align_up(target_width, multiple),
        box_height=align_up(target_height, multiple),
    )


def target_frames(job_frames: int, cap: int | None) -> int:
    return job_frames if cap is None else max(1, min(job_frames, cap))


def align_frames(frames: int, temporal_multiple: int) -> int:
    """The smallest ``k * temporal_multiple + 1`` that is at least ``frames``."""
    return max(0, math.ceil((frames - 1) / temporal_multiple)) * temporal_multiple + 1


def crop_to_target(frames: Frames, geometry: Geometry) -> Frames:
    """Centre-crop rendered ``(T, box_h, box_w, 3)`` frames back to the target size."""
    top, left = geometry.top, geometry.left
    cropped = frames[:, top : top + geometry.height, left : left + geometry.width]
    return np.ascontiguousarray(cropped)


def place_in_box(image: Frames, geometry: Geometry) -> Image.Image:
    """Resize an ``HxWx3`` image to the target size and centre it in the box.

    The margin is filled by repeating the edge pixels: a hard black border would be content the
    model tries to animate, while the margin is cropped away from the output anyway.
    """
    resized = Image.fromarray(np.ascontiguousarray(image[..., :3])).convert("RGB")
    if resized.size != (geometry.width, geometry.height):
        resized = resized.resize((geometry.width, geometry.height), Image.Resampling.BICUBIC)
    pixels = np.asarray(resized)
    top, left = geometry.top, geometry.left
    padded = np.pad(
        pixels,
        (
            (top, geometry.box_height - geometry.height - top),
            (left, geometry.box_width - geometry.width - left),
            (0, 0),
        ),
        mode="edge",
    )
    return Image.fromarray(padded)


def to_uint8_frames(video: npt.NDArray[np.floating]) -> Frames:
    """``[0, 1]`` float frames to ``uint8``."""
    scaled = np.rint(np.asarray(video, dtype=np.float32) * 255.0)
    frames: Frames = np.clip(scaled, 0, 255, out=scaled).astype(np.uint8)
    return frames


def sample_indices(
    count: int, available: int, source_fps: float | None, duration_s: float
) -> list[int]:
    """Which of ``available`` source frames to show at each of ``count`` evenly timed slots.

    With the source rate known, slot ``i`` (at ``i * duration_s / count`` seconds) shows the
    source frame on screen at that time; otherwise the source is spread evenly.
    """
    if available <= 0 or count <= 0:
        return []
    if source_fps is not None and source_fps > 0 and duration_s > 0:
        positions = [i * duration_s / count * source_fps for i in range(count)]
    else:
        positions = [i * available / count for i in range(count)]
    return [min(available - 1, math.floor(p + 1e-9)) for p in positions]


def segment_count(frames: int, segment_frames: int, overlap: int = 1) -> int:
    """How many windows of ``segment_frames`` (overlapping by ``overlap``) cover ``frames``.

    Mirrors Wan-Animate-2's zigzag padding, which pads the tail to whole segments (and, like
    it, renders nothing for a clip no longer than the overlap).
    """
    if frames <= overlap:
        return 0
    return math.ceil((frames - overlap) / (segment_frames - overlap))
