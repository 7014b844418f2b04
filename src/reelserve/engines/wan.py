"""Wan 2.x (Apache-2.0): text-, image- and first+last-frame-to-video, silent.

The checkpoint says which pipeline it is for (``model_index.json``) and so which modes it
renders: a text-to-video one (Wan2.2 T2V A14B, TI2V-5B) loads as ``WanPipeline`` and serves
``TEXT``; the image-to-video ones load as ``WanImageToVideoPipeline``: Wan2.2 I2V A14B (no
CLIP image encoder) serves ``IMAGE`` and ``FIRST_LAST`` (``last_image=``), Wan2.1 I2V 14B
(CLIP features of one image) ``IMAGE``, and Wan2.1 FLF2V 14B (CLIP features of both images,
with their position embedding) ``FIRST_LAST``. A profile gives each mode the checkpoint made
for it; a job for a mode the checkpoint cannot render fails with the reason.
The pipeline loads on first use (or :meth:`WanEngine.warm`) and stays resident.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reelserve.core.errors import GenerationFailed
from reelserve.core.render import Mode, ProgressFn, RenderJob, Rendition, describe
from reelserve.engines.acceleration import accelerate
from reelserve.engines.failures import pipeline_failures
from reelserve.engines.libraries import diffusers
from reelserve.engines.profiles import EngineSpec
from reelserve.engines.progress import StageProgress
from reelserve.engines.runtime import (
    configure_torch,
    pick_device,
    pick_dtype,
    resolve_seed,
    seeded_generator,
)
from reelserve.engines.sizing import (
    Geometry,
    align_frames,
    crop_to_target,
    place_in_box,
    plan_geometry,
    target_frames,
    to_uint8_frames,
)
from reelserve.engines.warmup import (
    mode_quality_jobs,
    render_each,
    should_render,
)

log = logging.getLogger(__name__)

# VAE 8x times the transformer's 2x2 patches; the pipelines check multiples of 16.
_SIZE_MULTIPLE = 16
# UMT5's prompt length in the Wan checkpoints; a tokenizer with a shorter limit lowers it.
_MAX_PROMPT_TOKENS = 512

TEXT_PIPELINE = "WanPipeline"
IMAGE_PIPELINE = "WanImageToVideoPipeline"


@dataclass(frozen=True)
class _Plan:
    geometry: Geometry
    frames: int
    render_frames: int
    fps: float


def checkpoint_pipeline(folder: Path) -> str:
    """The pipeline class a Wan checkpoint folder is laid out for."""
    name = str(_read_json(folder / "model_index.json").get("_class_name"))
    if name not in (TEXT_PIPELINE, IMAGE_PIPELINE):
        raise GenerationFailed(
            f"The checkpoint is a {name}; the wan engine loads {TEXT_PIPELINE} or "
            f"{IMAGE_PIPELINE} checkpoints."
        )
    return name


def checkpoint_modes(folder: Path) -> frozenset[Mode]:
    """The modes a Wan checkpoint folder renders (see the module docstring)."""
    if checkpoint_pipeline(folder) == TEXT_PIPELINE:
        return frozenset({Mode.TEXT})
    transformer = _read_json(folder / "transformer" / "config.json")
    if transformer.get("image_dim") is None:
        return frozenset({Mode.IMAGE, Mode.FIRST_LAST})
    # The image embedding's position table spans two images exactly when it is FLF2V's.
    if transformer.get("pos_embed_seq_len") is not None:
        return frozenset({Mode.FIRST_LAST})
    return frozenset({Mode.IMAGE})


def _read_json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


class WanEngine:
    """Renders ``TEXT`` or ``IMAGE``/``FIRST_LAST`` jobs with Wan, per its checkpoint."""

    family = "wan"
    modes = frozenset({Mode.TEXT, Mode.IMAGE, Mode.FIRST_LAST})

    def __init__(self, *, name: str, spec: EngineSpec, folder: Path, random_weights: bool) -> None:
        self.name = name
        self.random_weights = random_weights
        self.spec = spec
        self.folder = folder
        self._pipeline: Any = None
        self._served: frozenset[Mode] | None = None
        self._load_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._pipeline is not None

    @property
    def label(self) -> str:
        return f"{self.name} (random weights)" if self.random_weights else self.name

    def release(self) -> None:
        """Drop the pipeline (the next job loads it again); the caller frees the memory."""
        with self._load_lock:
            self._pipeline = None

    def served_modes(self) -> frozenset[Mode]:
        """The modes this engine's checkpoint renders."""
        if self._served is None:
            with pipeline_failures(self.family, "read its checkpoint"):
                self._served = checkpoint_modes(self.folder)
        return self._served

    def warm(self) -> None:
        """Load the pipeline now instead of on the first job."""
        self._resident()

    def warm_up(self, render: bool | None = None) -> None:
        """Load, then render one step per served mode and quality at the real shape."""
        pipe = self._resident()
        if not should_render(render, pipe._execution_device):
            return
        jobs = mode_quality_jobs(self.served_modes(), self.spec.quality)
        render_each(self.label, jobs, self._render)

    def denoiser(self) -> torch.nn.Module:
        transformer: torch.nn.Module = self._resident().transformer
        return transformer

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition:
        return self._render(job, progress)

    def _render(self, job: RenderJob, progress: ProgressFn, steps: int | None = None) -> Rendition:
        stages = StageProgress(progress)
        stages.started()
        served = self.served_modes()
        if job.mode not in served:
            kinds = ", ".join(sorted(mode.value for mode in served))
            raise GenerationFailed(
                f"The {self.family} checkpoint {self.spec.checkpoint!r} renders {kinds}, "
                f"not {job.mode.value}."
            )
        pipe = self._resident()
        with pipeline_failures(self.family):
            plan = self._plan(job, pipe)
            seed = resolve_seed(job.seed)
            log.info("%s render %s seed=%d plan=%s", self.label, describe(job), seed, plan)
            video = self._run(pipe, job, plan, seed, stages, steps)
            frames = crop_to_target(to_uint8_frames(video[: plan.frames]), plan.geometry)
        stages.finished()
        # Wan has no audio; the MP4 is silent whatever the job asked.
        return Rendition(frames=frames, fps=plan.fps)

    def _plan(self, job: RenderJob, pipe: Any) -> _Plan:
        policy = self.spec.render_size
        frames = target_frames(job.num_frames, policy.frames)
        duration_s = job.num_frames / job.fps
        return _Plan(
            geometry=plan_geometry(job.width, job.height, policy.long_side, _SIZE_MULTIPLE),
            frames=frames,
            render_frames=align_frames(frames, int(pipe.vae_scale_factor_temporal)),
            fps=frames / duration_s,
        )

    def _run(
        self,
        pipe: Any,
        job: RenderJob,
        plan: _Plan,
        seed: int,
        stages: StageProgress,
        steps: int | None,
    ) -> Any:
        sampling = self.spec.quality.for_quality(job.quality)

        def on_step_end(
            pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]
        ) -> dict[str, Any]:
            # Raising here (cancel, lost lease) unwinds the pipeline before the next step.
            stages.denoised(step + 1, pipe.num_timesteps)
            return tensors

        call: dict[str, Any] = {
            "prompt": job.prompt,
            "negative_prompt": job.negative_prompt,
            "width": plan.geometry.box_width,
            "height": plan.geometry.box_height,
            "num_frames": plan.render_frames,
            "num_inference_steps": steps or sampling.steps,
            "guidance_scale": sampling.guidance_scale,
            "max_sequence_length": int(min(_MAX_PROMPT_TOKENS, pipe.tokenizer.model_max_length)),
            "generator": seeded_generator(seed),
            "output_type": "np",
            "callback_on_step_end": on_step_end,
        }
        if job.mode is Mode.TEXT:
            return pipe(**call).frames[0]
        if job.image is None:
            raise GenerationFailed(f"{job.mode.value} needs a start image.")
        call["image"] = place_in_box(job.image, plan.geometry)
        if job.mode is Mode.FIRST_LAST:
            if job.end_image is None:
                raise GenerationFailed(f"{job.mode.value} needs an end image.")
            call["last_image"] = place_in_box(job.end_image, plan.geometry)
        return pipe(**call).frames[0]

    def _resident(self) -> Any:
        if self._pipeline is not None:
            return self._pipeline
        with self._load_lock:
            if self._pipeline is None:
                with pipeline_failures(self.family, "load its model"):
                    self._pipeline = self._load()
            return self._pipeline

    def _load(self) -> Any:
        configure_torch()
        device = pick_device()
        dtype = pick_dtype(device, self.spec.gpu_dtype)
        pipe = self._open_pipeline(dtype)
        applied = accelerate(pipe, self.spec.memory, self.spec.speed, str(device))
        pipe.set_progress_bar_config(disable=True)
        log.info("loaded %s from %s (%s, %s)", self.label, self.folder, dtype, applied)
        return pipe

    def _open_pipeline(self, dtype: torch.dtype) -> Any:
        """The checkpoint's own pipeline class with its weights, not yet placed."""
        pipeline_class = getattr(diffusers(), checkpoint_pipeline(self.folder))
        return pipeline_class.from_pretrained(str(self.folder), local_files_only=True, dtype=dtype)
