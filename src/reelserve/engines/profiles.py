"""Engine profiles: which model family serves each mode, and how it samples. Plain data.

A profile maps every :class:`~reelserve.core.render.Mode` to an :class:`EngineSpec`. Modes whose
specs are equal share one engine (one set of weights in memory). Quality (``standard`` /
``pro``) picks a :class:`Sampling` row of the spec; nothing else branches on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from reelserve.core.render import Mode
from reelserve.engines.speed import MemoryMode, SpeedOptions

EngineFamily = Literal["ltx2", "wan_animate", "wan"]
GpuDtype = Literal["bfloat16", "float16", "float32"]

QUALITIES = ("standard", "pro")


@dataclass(frozen=True)
class Sampling:
    """How one quality level samples."""

    steps: int
    guidance_scale: float
    # Few-step distilled weights sample without classifier-free guidance; for Wan-Animate-2
    # it also selects the distilled block graph (``WanAnimate2DistilledBlocks``).
    distilled: bool = False


@dataclass(frozen=True)
class QualityTable:
    standard: Sampling
    pro: Sampling

    def for_quality(self, quality: str) -> Sampling:
        """The sampling row for ``quality``; unknown values fall back to ``standard``."""
        return self.pro if quality == "pro" else self.standard


@dataclass(frozen=True)
class RenderSize:
    """The size an engine renders at internally, before the MP4 writer resamples.

    ``None`` means "the job's own value". A reduced size keeps the job's aspect ratio; the
    engine still rounds up to what the model accepts and centre-crops back.
    """

    long_side: int | None = None
    frames: int | None = None


@dataclass(frozen=True)
class EngineSpec:
    family: EngineFamily
    # Folder name under ``<models_dir>/<profile>/``.
    checkpoint: str
    quality: QualityTable
    render_size: RenderSize = RenderSize()
    # Used on CUDA only; CPU always runs float32 (half precision is slow or unsupported there).
    gpu_dtype: GpuDtype = "bfloat16"
    # Wan-Animate-2 only: frames per inference segment (the model's window, 4k+1).
    segment_frames: int = 81
    # GPU placement and speed options (ignored on CPU); see ``reelserve.engines.speed``.
    memory: MemoryMode = "resident"
    speed: SpeedOptions = field(default_factory=SpeedOptions)


@dataclass(frozen=True)
class Profile:
    name: str
    # True when the checkpoints are built locally with random weights: output is noise, and
    # everything that shows the profile (logs, /readyz, the playground) must say so.
    random_weights: bool
    engines: Mapping[Mode, EngineSpec]
    description: str = ""

    @property
    def label(self) -> str:
        """A human-readable name that never hides random weights."""
        if self.random_weights:
            return f"{self.name} (random weights: output is noise)"
        return self.name


_TINY_LTX2 = EngineSpec(
    family="ltx2",
    checkpoint="ltx2",
    quality=QualityTable(
        standard=Sampling(steps=4, guidance_scale=1.0, distilled=True),
        pro=Sampling(steps=8, guidance_scale=3.0),
    ),
    # 17 = 2 * 8 + 1 frames: valid for the real model's 8k+1 rule as well as the tiny VAE's.
    render_size=RenderSize(long_side=64, frames=17),
)

_TINY_WAN_ANIMATE = EngineSpec(
    family="wan_animate",
    checkpoint="wan_animate_2",
    quality=QualityTable(
        standard=Sampling(steps=2, guidance_scale=1.0, distilled=True),
        pro=Sampling(steps=4, guidance_scale=3.0),
    ),
    render_size=RenderSize(long_side=64, frames=17),
    # Two 9-frame segments for 17 frames, so the segment hand-over runs in every render.
    segment_frames=9,
)

TINY = Profile(
    name="tiny",
    random_weights=True,
    engines={
        Mode.TEXT: _TINY_LTX2,
        Mode.IMAGE: _TINY_LTX2,
        Mode.FIRST_LAST: _TINY_LTX2,
        Mode.MOTION: _TINY_WAN_ANIMATE,
    },
    description=(
        "Tiny LTX-2 and Wan-Animate-2 built locally with random weights, for tests, CI and "
        "machines without a GPU. Its videos are noise."
    ),
)

PROFILES: Mapping[str, Profile] = {profile.name: profile for profile in (TINY,)}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown engine profile {name!r} (known: {known})") from None
