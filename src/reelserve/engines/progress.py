"""Stage-weighted, monotonic progress reporting for one render."""

from __future__ import annotations

from reelserve.core.render import ProgressFn

# Share of an engine's work per stage. Denoising dominates; encoding the prompt and
# conditioning media comes first, decoding latents to pixels (and audio) last.
PREPARE_SHARE = 0.05
DENOISE_SHARE = 0.85


class StageProgress:
    """Maps denoising progress onto the job's ``0..1`` scale and never reports a step back.

    Every report goes through ``progress`` even when the value does not move, because that
    call is also where a cancel or a lost lease surfaces (it raises, and the render stops).
    """

    def __init__(self, progress: ProgressFn) -> None:
        self._progress = progress
        self._reported = 0.0

    def report(self, fraction: float) -> None:
        self._reported = max(self._reported, min(1.0, max(0.0, fraction)))
        self._progress(self._reported)

    def started(self) -> None:
        self.report(0.0)

    def denoised(self, done: int, total: int) -> None:
        share = min(1.0, done / total) if total > 0 else 1.0
        # Stays below the decode stage until the pipeline has actually returned.
        self.report(PREPARE_SHARE + DENOISE_SHARE * share)

    def finished(self) -> None:
        self.report(1.0)

    @property
    def reported(self) -> float:
        return self._reported
