"""What an engine is asked to render and what it gives back: plain data.

Frames are ``uint8`` RGB arrays shaped ``(frames, height, width, 3)``; audio is ``float32``
shaped ``(channels, samples)`` in ``[-1, 1]``. The engine may render at any internal size
and frame count; the MP4 writer resamples to the exact output size and frame count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Frames = npt.NDArray[np.uint8]
Audio = npt.NDArray[np.float32]


class Mode(StrEnum):
    TEXT = "text-to-video"
    IMAGE = "image-to-video"
    FIRST_LAST = "first-last-frame"
    MOTION = "motion-control"


@dataclass(frozen=True)
class RenderJob:
    mode: Mode
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    num_frames: int
    fps: int
    generate_audio: bool
    seed: int | None
    quality: str
    # HxWx3 RGB, already centre-cropped to the output aspect ratio.
    image: Frames | None = None
    end_image: Frames | None = None
    # Motion control: the reference video's frames (TxHxWx3) and their rate.
    reference_frames: Frames | None = None
    reference_fps: float | None = None
    character_orientation: str = "video"


@dataclass(frozen=True)
class Rendition:
    frames: Frames
    fps: float
    audio: Audio | None = None
    sample_rate: int | None = None


# Called with the fraction (0..1) of the engine's work done. It may raise
# ``JobCanceled`` or ``LeaseLost``; the engine must let that propagate and stop.
ProgressFn = Callable[[float], None]


class Engine(Protocol):
    """Turns one render job into frames (and audio)."""

    name: str
    random_weights: bool

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition: ...


def describe(job: RenderJob) -> dict[str, Any]:
    """A loggable summary of a job (no pixel data)."""
    return {
        "mode": job.mode.value,
        "size": f"{job.width}x{job.height}",
        "frames": job.num_frames,
        "fps": job.fps,
        "audio": job.generate_audio,
        "seed": job.seed,
        "quality": job.quality,
    }
