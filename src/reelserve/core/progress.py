"""Task progress weighted by stage, 0..100 and monotonic."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    PREPARE = "prepare"  # fetch and decode inputs
    RENDER = "render"  # engine: encode prompt, denoise, decode
    ENCODE = "encode"  # write the MP4
    STORE = "store"  # upload the output


# Share of the whole bar each stage owns, in order; the engine dominates real runs.
_WEIGHTS: tuple[tuple[Stage, float], ...] = (
    (Stage.PREPARE, 0.05),
    (Stage.RENDER, 0.85),
    (Stage.ENCODE, 0.08),
    (Stage.STORE, 0.02),
)


def overall_percent(stage: Stage, fraction: float) -> int:
    """Percent done when ``stage`` is ``fraction`` complete. Never 100 before the end."""
    fraction = min(max(fraction, 0.0), 1.0)
    done = 0.0
    for current, weight in _WEIGHTS:
        if current is stage:
            return min(99, int((done + weight * fraction) * 100))
        done += weight
    raise ValueError(f"unknown stage {stage!r}")


def advance(previous: int, new: int) -> int:
    """Progress only moves forward."""
    return max(previous, min(new, 100))
