"""Engine profiles: which model family serves each mode and quality, and how. Plain data.

Profiles are written as TOML (``reelserve.engines.profile_files`` reads and validates them;
the built-in ones ship in ``reelserve/engines/builtin/``). In memory a profile maps every mode
it serves to a :class:`ModeSpec`: one :class:`EngineSpec` per quality plus the mode's audio
policy. Specs that are equal share one engine (one set of weights in memory); when both
qualities of a mode use the same checkpoint they share one spec whose :class:`QualityTable`
holds both sampling rows, so quality picks a row and nothing else branches on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reelserve.core.capabilities import AudioPolicy
from reelserve.core.render import Mode
from reelserve.engines.speed import MemoryMode, SpeedOptions

EngineFamily = Literal["ltx2", "wan", "wan_animate"]
ENGINE_FAMILIES: tuple[EngineFamily, ...] = ("ltx2", "wan", "wan_animate")
# Families whose model makes sound in the same pass as the video.
NATIVE_AUDIO_FAMILIES: frozenset[str] = frozenset({"ltx2"})
# Families with an offline tiny random-weights builder (reelserve.engines.tiny).
TINY_FAMILIES: frozenset[str] = frozenset({"ltx2", "wan_animate"})

GpuDtype = Literal["bfloat16", "float16", "float32"]
GPU_DTYPES: tuple[GpuDtype, ...] = ("bfloat16", "float16", "float32")

Quality = Literal["standard", "pro"]
QUALITIES: tuple[Quality, ...] = ("standard", "pro")


@dataclass(frozen=True)
class Checkpoint:
    """Where one checkpoint's weights come from: exactly one of ``hub``, ``path``, ``tiny``."""

    # A Hugging Face hub repository id in diffusers format, at ``revision`` (default: main).
    hub: str | None = None
    revision: str | None = None
    # A local diffusers-format folder, used in place.
    path: Path | None = None
    # Built locally with random weights, under ``<models_dir>/tiny/<tiny>``.
    tiny: str | None = None

    def __str__(self) -> str:
        if self.hub is not None:
            return self.hub + (f"@{self.revision}" if self.revision else "")
        if self.path is not None:
            return str(self.path)
        return f"tiny:{self.tiny}"


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
    """Everything one engine instance needs: one checkpoint and how to run it."""

    family: EngineFamily
    checkpoint: Checkpoint
    quality: QualityTable
    render_size: RenderSize = RenderSize()
    # Used on CUDA only; CPU always runs float32 (half precision is slow or unsupported there).
    gpu_dtype: GpuDtype = "bfloat16"
    # Wan-Animate-2 only: frames per inference segment (the model's window, 4k+1).
    segment_frames: int = 81
    # GPU placement and speed options (reelserve.engines.acceleration applies them).
    memory: MemoryMode = "resident"
    speed: SpeedOptions = field(default_factory=SpeedOptions)


@dataclass(frozen=True)
class ModeSpec:
    """How one mode is served: an engine spec per quality and what audio it answers with."""

    standard: EngineSpec
    pro: EngineSpec
    audio: AudioPolicy

    def for_quality(self, quality: str) -> EngineSpec:
        return self.pro if quality == "pro" else self.standard

    def specs(self) -> list[EngineSpec]:
        """The distinct specs (one when both qualities share an engine)."""
        return [self.standard] if self.standard == self.pro else [self.standard, self.pro]


@dataclass(frozen=True)
class Profile:
    name: str
    modes: Mapping[Mode, ModeSpec]
    description: str = ""
    # Where the profile was read from (a built-in's file inside the package, or the user's).
    source: Path | None = field(default=None, compare=False)

    @property
    def random_weights(self) -> bool:
        """True when any checkpoint is built locally with random weights: output is noise,
        and everything that shows the profile (logs, /readyz, the playground) must say so."""
        return any(spec.checkpoint.tiny is not None for spec in self.specs())

    @property
    def label(self) -> str:
        """A human-readable name that never hides random weights."""
        if self.random_weights:
            return f"{self.name} (random weights: output is noise)"
        return self.name

    def specs(self) -> list[EngineSpec]:
        """Every distinct engine spec, in mode order."""
        found: list[EngineSpec] = []
        for mode_spec in self.modes.values():
            for spec in mode_spec.specs():
                if spec not in found:
                    found.append(spec)
        return found

    def checkpoints(self) -> list[Checkpoint]:
        found: list[Checkpoint] = []
        for spec in self.specs():
            if spec.checkpoint not in found:
                found.append(spec.checkpoint)
        return found

    def audio_table(self) -> dict[str, dict[str, str]]:
        """``{mode: {quality: policy}}`` as a worker publishes it (see core.capabilities).

        Motion control is left out: its sound is the reference video's, whatever the model.
        """
        return {
            mode.value: {quality: spec.audio for quality in QUALITIES}
            for mode, spec in self.modes.items()
            if mode is not Mode.MOTION
        }
