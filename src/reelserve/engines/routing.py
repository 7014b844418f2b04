"""One engine per quality behind one mode, when the qualities use different checkpoints."""

from __future__ import annotations

from reelserve.core.render import Engine, ProgressFn, RenderJob, Rendition


class ByQuality:
    """Sends ``pro`` jobs to one engine and every other quality to another.

    Each engine loads its weights on its first job, so a worker that only ever sees one
    quality holds one model in memory.
    """

    def __init__(self, standard: Engine, pro: Engine) -> None:
        self.standard = standard
        self.pro = pro
        self.name = f"{standard.name} | {pro.name}"
        self.random_weights = standard.random_weights or pro.random_weights

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition:
        engine = self.pro if job.quality == "pro" else self.standard
        return engine.render(job, progress)
