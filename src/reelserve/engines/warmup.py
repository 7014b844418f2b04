"""Start-up renders that make the first user's job as fast as the second.

On a GPU the first render at a new shape compiles the denoiser's blocks (tens of seconds) and
autotunes kernels. An engine's ``warm_up()`` runs one one-step render per mode and quality at
the shape real jobs use (5 s of 1280x720 at 24 fps, before the profile's render-size policy),
so that happens while the worker starts rather than inside a job. On CPU nothing compiles and
warm-up only loads the weights, unless a test asks for the renders.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

import numpy as np
import torch

from reelserve.core.render import Frames, Mode, ProgressFn, RenderJob
from reelserve.engines.profiles import QUALITIES, QualityTable

log = logging.getLogger(__name__)

# An engine's own render with a step count: (job, progress, steps) -> anything.
RenderStep = Callable[[RenderJob, ProgressFn, int], object]

WARM_UP_STEPS = 1
_WIDTH, _HEIGHT, _FPS, _SECONDS = 1280, 720, 24, 5
# The reference clip is resampled to the output length and size; a small one is enough.
_REFERENCE_SIZE = (180, 320)


def should_render(requested: bool | None, device: torch.device) -> bool:
    """``requested`` if given, else render only where something compiles (CUDA)."""
    return requested if requested is not None else device.type == "cuda"


def warm_up_qualities(table: QualityTable) -> list[str]:
    """One quality per distinct sampling row: equal rows compile the same graphs."""
    chosen: dict[object, str] = {}
    for quality in QUALITIES:
        chosen.setdefault(table.for_quality(quality), quality)
    return list(chosen.values())


def warm_up_job(mode: Mode, quality: str) -> RenderJob:
    """A 5 s 1280x720 job of ``mode`` with the inputs that mode needs (smooth gradients)."""
    frames = _FPS * _SECONDS + 1
    job = RenderJob(
        mode=mode,
        prompt="a person walks through a city street at night",
        negative_prompt=None,
        width=_WIDTH,
        height=_HEIGHT,
        num_frames=frames,
        fps=_FPS,
        generate_audio=mode is not Mode.MOTION,
        seed=0,
        quality=quality,
    )
    if mode in (Mode.IMAGE, Mode.FIRST_LAST, Mode.MOTION):
        job = replace(job, image=_gradient(_HEIGHT, _WIDTH))
    if mode is Mode.FIRST_LAST:
        job = replace(job, end_image=_gradient(_HEIGHT, _WIDTH)[:, ::-1].copy())
    if mode is Mode.MOTION:
        still = _gradient(*_REFERENCE_SIZE)
        reference = np.stack([np.roll(still, 2 * t, axis=1) for t in range(frames)])
        job = replace(job, reference_frames=reference, reference_fps=float(_FPS))
    return job


def mode_quality_jobs(modes: Iterable[Mode], table: QualityTable) -> list[tuple[str, RenderJob]]:
    """One named warm-up job per mode and distinct quality, in a stable order."""
    return [
        (f"{mode.value}/{quality}", warm_up_job(mode, quality))
        for mode in sorted(modes, key=lambda mode: mode.value)
        for quality in warm_up_qualities(table)
    ]


def render_each(label: str, jobs: Iterable[tuple[str, RenderJob]], render: RenderStep) -> None:
    """Render every warm-up job with :data:`WARM_UP_STEPS` steps, logging what each took."""
    for name, job in jobs:
        started = time.perf_counter()
        render(job, ignore_progress, WARM_UP_STEPS)
        log.info("%s warmed up %s in %.1f s", label, name, time.perf_counter() - started)


def ignore_progress(fraction: float) -> None:
    """Warm-up renders report to nobody."""


def _gradient(height: int, width: int) -> Frames:
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    image = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width))])
    rgb = np.concatenate([image, image[:1] * 0 + 128])
    frames: Frames = rgb.transpose(1, 2, 0).astype(np.uint8)
    return frames
