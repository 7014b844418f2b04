"""LTX-2: text-, image- and first+last-frame-to-video, with audio from the same pass.

One checkpoint serves the three modes: ``LTX2Pipeline`` is loaded from the folder and
``LTX2ImageToVideoPipeline`` / ``LTX2ConditionPipeline`` are built on the same modules, so the
weights are in memory once. Pipelines load on first use (or :meth:`LTX2Engine.warm`) and stay
resident between jobs.

Audio and video are denoised together (the two streams attend to each other), so the audio is
always generated; a job that does not want it gets the same video and no track.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reelserve.core.errors import GenerationFailed
from reelserve.core.render import Audio, Mode, ProgressFn, RenderJob, Rendition, describe
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

# The pipelines check that height and width are multiples of 32 whatever the VAE's own ratio.
_PIPELINE_SIZE_MULTIPLE = 32
# The pipelines' default prompt length; a tokenizer with a shorter limit lowers it.
_MAX_PROMPT_TOKENS = 1024


@dataclass(frozen=True)
class _Pipelines:
    text: Any
    image: Any
    condition: Any
    # Stateless helper class for first/last-frame conditions, imported with the pipelines.
    condition_item: Any


@dataclass(frozen=True)
class _Plan:
    geometry: Geometry
    # Frames handed back, and frames rendered (rounded up to the VAE's temporal grid).
    frames: int
    render_frames: int
    fps: float
    duration_s: float


class LTX2Engine:
    """Renders ``TEXT``, ``IMAGE`` and ``FIRST_LAST`` jobs with LTX-2."""

    family = "ltx2"
    modes = frozenset({Mode.TEXT, Mode.IMAGE, Mode.FIRST_LAST})

    def __init__(self, *, name: str, spec: EngineSpec, folder: Path, random_weights: bool) -> None:
        self.name = name
        self.random_weights = random_weights
        self.spec = spec
        self.folder = folder
        self._pipelines: _Pipelines | None = None
        self._load_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._pipelines is not None

    @property
    def label(self) -> str:
        return f"{self.name} (random weights)" if self.random_weights else self.name

    def warm(self) -> None:
        """Load the pipelines now instead of on the first job."""
        self._resident()

    def release(self) -> None:
        """Drop the pipelines (the next job loads them again); the caller frees the memory."""
        with self._load_lock:
            self._pipelines = None

    def warm_up(self, render: bool | None = None) -> None:
        """Load the pipelines, then render one step per mode and quality at the real shape.

        The renders (on by default only on a GPU, see ``reelserve.engines.warmup``) make
        ``torch.compile`` and kernel autotuning happen now instead of in the first job.
        """
        pipes = self._resident()
        if not should_render(render, pipes.text._execution_device):
            return
        jobs = mode_quality_jobs(self.modes, self.spec.quality)
        render_each(self.label, jobs, self._render)

    def denoiser(self) -> torch.nn.Module:
        """The resident transformer (loaded if needed), shared by the three modes."""
        transformer: torch.nn.Module = self._resident().text.transformer
        return transformer

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition:
        return self._render(job, progress)

    def _render(self, job: RenderJob, progress: ProgressFn, steps: int | None = None) -> Rendition:
        stages = StageProgress(progress)
        stages.started()
        if job.mode not in self.modes:
            raise GenerationFailed(f"The {self.family} engine does not render {job.mode.value}.")
        pipes = self._resident()
        with pipeline_failures(self.family):
            plan = self._plan(job, pipes.text)
            seed = resolve_seed(job.seed)
            log.info("%s render %s seed=%d plan=%s", self.label, describe(job), seed, plan)
            output = self._run(job, plan, pipes, seed, stages, steps)
            frames = crop_to_target(to_uint8_frames(output.frames[0][: plan.frames]), plan.geometry)
            sample_rate = int(pipes.text.vocoder.config.output_sampling_rate)
            audio = _audio_track(output.audio[0], plan, sample_rate)
        stages.finished()
        if not job.generate_audio:
            return Rendition(frames=frames, fps=plan.fps)
        return Rendition(frames=frames, fps=plan.fps, audio=audio, sample_rate=sample_rate)

    def _plan(self, job: RenderJob, pipe: Any) -> _Plan:
        policy = self.spec.render_size
        multiple = max(
            _PIPELINE_SIZE_MULTIPLE,
            pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size,
        )
        temporal = pipe.vae_temporal_compression_ratio * pipe.transformer_temporal_patch_size
        frames = target_frames(job.num_frames, policy.frames)
        duration_s = job.num_frames / job.fps
        return _Plan(
            geometry=plan_geometry(job.width, job.height, policy.long_side, multiple),
            frames=frames,
            render_frames=align_frames(frames, temporal),
            # Fewer frames over the same duration play at a lower rate, so the clip (and the
            # audio, which the pipeline sizes from frames / rate) keeps the job's length.
            fps=frames / duration_s,
            duration_s=duration_s,
        )

    def _run(
        self,
        job: RenderJob,
        plan: _Plan,
        pipes: _Pipelines,
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
            "frame_rate": plan.fps,
            "num_inference_steps": steps or sampling.steps,
            "guidance_scale": sampling.guidance_scale,
            "audio_guidance_scale": sampling.guidance_scale,
            # Plain classifier-free guidance only: spatio-temporal and modality-isolation
            # guidance each add a transformer pass per step the profile does not ask for.
            "stg_scale": 0.0,
            "audio_stg_scale": 0.0,
            "spatio_temporal_guidance_blocks": None,
            "modality_scale": 1.0,
            "audio_modality_scale": 1.0,
            "guidance_rescale": 0.0,
            "audio_guidance_rescale": 0.0,
            "max_sequence_length": _prompt_tokens(pipes.text),
            "generator": seeded_generator(seed),
            "output_type": "np",
            "callback_on_step_end": on_step_end,
        }
        if job.mode is Mode.TEXT:
            return pipes.text(**call)
        if job.image is None:
            raise GenerationFailed(f"{job.mode.value} needs a start image.")
        first = place_in_box(job.image, plan.geometry)
        if job.mode is Mode.IMAGE:
            return pipes.image(image=first, **call)
        if job.end_image is None:
            raise GenerationFailed(f"{job.mode.value} needs an end image.")
        last = place_in_box(job.end_image, plan.geometry)
        conditions = [
            pipes.condition_item(frames=first, index=0, strength=1.0),
            pipes.condition_item(frames=last, index=-1, strength=1.0),
        ]
        return pipes.condition(conditions=conditions, **call)

    def _resident(self) -> _Pipelines:
        pipes = self._pipelines
        if pipes is not None:
            return pipes
        with self._load_lock:
            if self._pipelines is None:
                with pipeline_failures(self.family, "load its model"):
                    self._pipelines = self._load()
            return self._pipelines

    def _load(self) -> _Pipelines:
        library = diffusers()
        configure_torch()
        device = pick_device()
        dtype = pick_dtype(device, self.spec.gpu_dtype)
        text = self._open_pipeline(dtype)
        applied = accelerate(text, self.spec.memory, self.spec.speed, str(device))
        text.set_progress_bar_config(disable=True)
        log.info("loaded %s from %s (%s, %s)", self.label, self.folder, dtype, applied)
        return _Pipelines(
            text=text,
            image=_sharing_modules(library.LTX2ImageToVideoPipeline, text),
            condition=_sharing_modules(library.LTX2ConditionPipeline, text),
            condition_item=diffusers("pipelines.ltx2").LTX2VideoCondition,
        )

    def _open_pipeline(self, dtype: torch.dtype) -> Any:
        """The text-to-video pipeline with the checkpoint's weights, not yet placed."""
        return diffusers().LTX2Pipeline.from_pretrained(
            str(self.folder), local_files_only=True, dtype=dtype
        )


def _sharing_modules(pipeline_class: Any, loaded: Any) -> Any:
    """``pipeline_class`` built on ``loaded``'s modules (no copy, no dtype cast).

    ``from_pipe`` would do the same but casts every module to its ``dtype`` argument (float32 by
    default), which would silently undo half precision on a GPU.
    """
    accepted = inspect.signature(pipeline_class.__init__).parameters
    modules = {name: module for name, module in loaded.components.items() if name in accepted}
    pipeline = pipeline_class(**modules)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _prompt_tokens(pipe: Any) -> int:
    return int(min(_MAX_PROMPT_TOKENS, pipe.tokenizer.model_max_length))


def _audio_track(waveform: torch.Tensor, plan: _Plan, sample_rate: int) -> Audio:
    """``(channels, samples)`` float32 in ``[-1, 1]``, no longer than the job's duration."""
    samples = math.ceil(plan.duration_s * sample_rate)
    audio: Audio = waveform.detach().float().cpu().numpy()[:, :samples].astype(np.float32)
    return np.clip(audio, -1.0, 1.0, out=audio)
