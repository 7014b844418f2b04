"""Engine factories the engine-process tests hand to the child as ``"module:function"``.

``scripted_tiny_ltx2`` serves text-to-video with the real tiny LTX-2 engine, wrapped so that a
word in the prompt changes how the render goes; one engine process can then play every
scenario a module needs:

- ``slow``: each denoiser call sleeps first, so a cancel or a kill lands mid-denoise;
- ``deaf``: the engine swallows ``JobCanceled`` from its progress callback, and every
  denoiser call after the first hangs for a minute (a step that never returns, as far as
  the supervisor can tell);
- ``oom``: the denoiser raises ``torch.OutOfMemoryError`` on its first call. This is a test
  stand-in for a GPU running out of memory (no CUDA card here); everything after the raise
  (the engine's error wrapping, the child's recovery, the worker's message) is real.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch

from reelserve.core.errors import JobCanceled
from reelserve.core.render import Engine, Mode, ProgressFn, RenderJob, Rendition
from reelserve.engines import get_profile
from reelserve.engines.ltx2 import LTX2Engine
from reelserve.engines.tiny import ensure_tiny_checkpoint
from reelserve.engines.weights import checkpoint_folder

STEP_DELAY_S = 0.3
HUNG_STEP_S = 60.0


def tiny_ltx2_engine(models_dir: Path) -> LTX2Engine:
    spec = get_profile("tiny").modes[Mode.TEXT].standard
    folder = ensure_tiny_checkpoint("ltx2", checkpoint_folder(Path(models_dir), spec.checkpoint))
    return LTX2Engine(name="tiny/ltx2", spec=spec, folder=folder, random_weights=True)


class ScriptedEngine:
    def __init__(self, inner: LTX2Engine, warm_marker: Path | None) -> None:
        self.inner = inner
        self.name = inner.name
        self.random_weights = inner.random_weights
        self._warm_marker = warm_marker

    def warm_up(self) -> None:
        self.inner.warm()
        if self._warm_marker is not None:
            self._warm_marker.write_text("warm")

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition:
        words = set(job.prompt.split())
        calls = 0

        def before_denoiser(module: torch.nn.Module, args: Any) -> None:
            nonlocal calls
            calls += 1
            if "oom" in words and calls == 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            if "deaf" in words and calls > 1:
                time.sleep(HUNG_STEP_S)
            if "slow" in words:
                time.sleep(STEP_DELAY_S)

        def deaf(fraction: float) -> None:
            with contextlib.suppress(JobCanceled):
                progress(fraction)

        hook = self.inner.denoiser().register_forward_pre_hook(before_denoiser)
        try:
            return self.inner.render(job, deaf if "deaf" in words else progress)
        finally:
            hook.remove()


def scripted_tiny_ltx2(models_dir: Path, warm_marker: Path | None = None) -> dict[Mode, Engine]:
    return {Mode.TEXT: ScriptedEngine(tiny_ltx2_engine(models_dir), warm_marker)}
