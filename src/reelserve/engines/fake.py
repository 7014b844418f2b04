"""FakeEngine: stands in for a GPU model in service and API tests, and in benchmarks of
the control plane. It draws a moving gradient and a tone, in ``steps`` timed steps, and
reports progress and honours cancel exactly as the real engines do. Not a profile."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from reelserve.core.render import Mode, ProgressFn, RenderJob, Rendition

SAMPLE_RATE = 16_000


@dataclass
class FakeEngine:
    steps: int = 4
    seconds_per_step: float = 0.0
    name: str = "fake"
    random_weights: bool = True
    fail_with: Exception | None = None
    renders: int = 0
    # False: makes no sound even when asked, like the silent Wan models.
    sound: bool = True

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition:
        self.renders += 1
        for step in range(self.steps):
            if self.seconds_per_step:
                time.sleep(self.seconds_per_step)
            if self.fail_with is not None and step == self.steps // 2:
                raise self.fail_with
            progress((step + 1) / self.steps)
        seconds = job.num_frames / job.fps
        frame_count = 9
        height, width = 36, max(8, round(36 * job.width / job.height))
        ramp = np.linspace(0, 255, width, dtype=np.float32)
        frames = np.empty((frame_count, height, width, 3), dtype=np.uint8)
        for index in range(frame_count):
            shifted = np.roll(ramp, index * 3).astype(np.uint8)
            frames[index] = shifted[None, :, None]
        audio = None
        if job.generate_audio and self.sound:
            t = np.arange(int(seconds * SAMPLE_RATE), dtype=np.float32) / SAMPLE_RATE
            audio = (0.2 * np.sin(2 * np.pi * 440.0 * t))[None, :].astype(np.float32)
        return Rendition(
            frames=frames,
            fps=frame_count / seconds,
            audio=audio,
            sample_rate=SAMPLE_RATE if audio is not None else None,
        )


def fake_engines(steps: int = 4, seconds_per_step: float = 0.0) -> dict[Mode, FakeEngine]:
    engine = FakeEngine(steps=steps, seconds_per_step=seconds_per_step)
    return {mode: engine for mode in Mode}
