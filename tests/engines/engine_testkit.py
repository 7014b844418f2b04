"""Jobs, images and progress recorders for the engine tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from reelserve.core.render import Frames, Mode, RenderJob


def pattern(height: int, width: int, seed: int) -> Frames:
    """A smooth gradient between four random corner colours."""
    corners = np.random.default_rng(seed).integers(0, 256, size=(2, 2, 3)).astype(np.float32)
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    x = np.linspace(0.0, 1.0, width)[None, :, None]
    top = corners[0, 0] * (1 - x) + corners[0, 1] * x
    bottom = corners[1, 0] * (1 - x) + corners[1, 1] * x
    image: Frames = np.rint(top * (1 - y) + bottom * y).astype(np.uint8)
    return image


def make_job(mode: Mode, **changes: object) -> RenderJob:
    """A 5 s, 16:9 job of ``mode`` with every input that mode needs."""
    job = RenderJob(
        mode=mode,
        prompt="a robot dances in the city at night",
        negative_prompt=None,
        width=1280,
        height=720,
        num_frames=121,
        fps=24,
        generate_audio=mode is not Mode.MOTION,
        seed=7,
        quality="standard",
    )
    if mode in (Mode.IMAGE, Mode.FIRST_LAST, Mode.MOTION):
        job = replace(job, image=pattern(360, 640, seed=1))
    if mode is Mode.FIRST_LAST:
        job = replace(job, end_image=pattern(360, 640, seed=2))
    if mode is Mode.MOTION:
        # A 4 s reference at 30 fps; the output follows its length.
        reference = np.stack(
            [np.roll(pattern(180, 320, seed=3), 4 * t, axis=1) for t in range(120)]
        )
        job = replace(job, reference_frames=reference, reference_fps=30.0, num_frames=96, fps=24)
    return replace(job, **changes)  # type: ignore[arg-type]


class ProgressLog:
    """Records progress; optionally raises ``error`` on the ``raise_on``-th report (1-based)."""

    def __init__(self, raise_on: int | None = None, error: Callable[[], Exception] | None = None):
        self.values: list[float] = []
        self._raise_on = raise_on
        self._error = error

    def __call__(self, fraction: float) -> None:
        self.values.append(fraction)
        if self._raise_on is not None and len(self.values) == self._raise_on:
            assert self._error is not None
            raise self._error()


def assert_well_formed_progress(values: list[float]) -> None:
    assert values, "no progress reported"
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(b >= a for a, b in itertools.pairwise(values)), values
    assert values[-1] == 1.0
    assert values.count(1.0) == 1, "1.0 is reported once, when the render is done"
