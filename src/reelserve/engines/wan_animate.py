"""Wan-Animate-2 motion control: a character image moved by a reference video.

Runs the modular ``WanAnimate2Blocks`` (or ``WanAnimate2DistilledBlocks`` for distilled
sampling) on the raw reference frames; no pose or face extraction. The output is silent (the
worker copies the reference audio when asked) and as long as the reference.

Modular pipelines take no step callback, so progress counts the transformer's forward calls
with a pre-hook: per segment one reference-extraction pass, then one pass per step and
guidance branch. Raising from the hook (cancel, lost lease) stops the render at the next call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from reelserve.core.errors import GenerationFailed
from reelserve.core.render import Frames, Mode, ProgressFn, RenderJob, Rendition, describe
from reelserve.engines.acceleration import accelerate
from reelserve.engines.failures import pipeline_failures
from reelserve.engines.libraries import diffusers
from reelserve.engines.profiles import QUALITIES, EngineSpec, Sampling
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
    crop_to_target,
    place_in_box,
    plan_geometry,
    sample_indices,
    segment_count,
    target_frames,
    to_uint8_frames,
)
from reelserve.engines.warmup import (
    render_each,
    should_render,
    warm_up_job,
    warm_up_qualities,
)

log = logging.getLogger(__name__)

# VAE 8x times the transformer's 2x2 patches: frame sides must be multiples of 16.
_SIZE_MULTIPLE = 16
# Frames each segment carries over from the previous one (the pipeline's default).
_SEGMENT_OVERLAP = 1
# The modular blocks log every exception they re-raise with a full traceback, a cancel
# included; the engine reports failures itself.
_BLOCK_LOGGER = "diffusers.modular_pipelines.modular_pipeline"


@dataclass(frozen=True)
class _Plan:
    geometry: Geometry
    frames: int
    fps: float
    duration_s: float


class WanAnimateEngine:
    """Renders ``MOTION`` jobs with Wan-Animate-2.

    ``character_orientation`` (the model has no switch for it; this is how the engine asks):

    - ``"video"`` (default): the reference frames drive the clip as they are, so the character
      takes the reference's poses, facing and placement, letterboxed into the output frame.
    - ``"image"``: the character image replaces the first reference frame. The clip opens in
      the image's own framing and pose, and the reference-extraction pass, which reads CLIP
      features of the first driving frame, is anchored on the character as the image shows it;
      the remaining frames follow the reference motion at the same timing.
    """

    family = "wan_animate"
    modes = frozenset({Mode.MOTION})

    def __init__(self, *, name: str, spec: EngineSpec, folder: Path, random_weights: bool) -> None:
        self.name = name
        self.random_weights = random_weights
        self.spec = spec
        self.folder = folder
        self._loaded: Any = None
        self._pipelines: dict[Sampling, Any] = {}
        self._load_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    @property
    def label(self) -> str:
        return f"{self.name} (random weights)" if self.random_weights else self.name

    def warm(self) -> None:
        """Load the pipelines for every quality now instead of on the first job."""
        for quality in QUALITIES:
            self._pipeline(self.spec.quality.for_quality(quality))

    def release(self) -> None:
        """Drop the pipelines (the next job loads them again); the caller frees the memory."""
        with self._load_lock:
            self._loaded = None
            self._pipelines = {}

    def warm_up(self, render: bool | None = None) -> None:
        """Load the pipelines, then render one step per quality at the real shape.

        The renders (on by default only on a GPU, see ``reelserve.engines.warmup``) compile
        the blocks and their flex-attention masks now instead of in the first job.
        """
        self.warm()
        if not should_render(render, self._resident()._execution_device):
            return
        # Every segment has the same shape, so one segment compiles what a clip needs.
        segment = self.spec.segment_frames
        jobs = [
            (quality, replace(warm_up_job(Mode.MOTION, quality), num_frames=segment))
            for quality in warm_up_qualities(self.spec.quality)
        ]
        render_each(self.label, jobs, self._render)

    def denoiser(self) -> torch.nn.Module:
        """The resident transformer (loaded if needed), shared by every quality."""
        transformer: torch.nn.Module = self._resident().transformer
        return transformer

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition:
        return self._render(job, progress)

    def _render(self, job: RenderJob, progress: ProgressFn, steps: int | None = None) -> Rendition:
        stages = StageProgress(progress)
        stages.started()
        if job.mode not in self.modes:
            raise GenerationFailed(f"The {self.family} engine does not render {job.mode.value}.")
        image, reference = job.image, job.reference_frames
        if image is None or reference is None or len(reference) == 0:
            raise GenerationFailed("Motion control needs a character image and reference frames.")
        sampling = self.spec.quality.for_quality(job.quality)
        pipe = self._pipeline(sampling)
        with pipeline_failures(self.family):
            plan = self._plan(job)
            seed = resolve_seed(job.seed)
            log.info("%s render %s seed=%d plan=%s", self.label, describe(job), seed, plan)
            character = place_in_box(image, plan.geometry)
            driving = _driving_frames(reference, job.reference_fps, plan)
            if job.character_orientation == "image":
                driving[0] = character
            video = self._run(
                pipe, job, character, driving, plan, steps or sampling.steps, seed, stages
            )
            frames = crop_to_target(to_uint8_frames(video[: plan.frames]), plan.geometry)
        stages.finished()
        return Rendition(frames=frames, fps=plan.fps)

    def _plan(self, job: RenderJob) -> _Plan:
        policy = self.spec.render_size
        # At least two frames: one frame is all overlap and the pipeline would render nothing.
        frames = max(2, target_frames(job.num_frames, policy.frames))
        duration_s = job.num_frames / job.fps
        return _Plan(
            geometry=plan_geometry(job.width, job.height, policy.long_side, _SIZE_MULTIPLE),
            frames=frames,
            fps=frames / duration_s,
            duration_s=duration_s,
        )

    def _run(
        self,
        pipe: Any,
        job: RenderJob,
        character: Image.Image,
        driving: list[Image.Image],
        plan: _Plan,
        steps: int,
        seed: int,
        stages: StageProgress,
    ) -> Any:
        geometry = plan.geometry
        branches = 2 if pipe.requires_unconditional_embeds else 1
        segments = segment_count(plan.frames, self.spec.segment_frames, _SEGMENT_OVERLAP)
        total_calls = segments * (1 + steps * branches)
        calls = 0

        def before_transformer(module: torch.nn.Module, args: Any) -> None:
            nonlocal calls
            stages.denoised(calls, total_calls)
            calls += 1

        hook = pipe.transformer.register_forward_pre_hook(before_transformer)
        try:
            # Where it computes, not where offloaded weights rest between calls.
            with _compile_free_on_cpu(pipe._execution_device), _quiet_logger(_BLOCK_LOGGER):
                videos = pipe(
                    prompt=job.prompt,
                    negative_prompt=job.negative_prompt,
                    image=character,
                    driving_video=driving,
                    # The pipeline derives the frame from the image's aspect ratio and this
                    # area, rounding each side down to 16: one extra column of area keeps
                    # float rounding from losing a whole 16 px step.
                    height=geometry.box_height,
                    width=geometry.box_width + 1,
                    segment_frame_length=self.spec.segment_frames,
                    prev_segment_conditioning_frames=_SEGMENT_OVERLAP,
                    num_inference_steps=steps,
                    max_sequence_length=int(pipe.transformer.config.text_len),
                    generator=seeded_generator(seed),
                    output_type="np",
                    output="videos",
                )
        finally:
            hook.remove()
        video = videos[0]
        if tuple(video.shape[1:3]) != (geometry.box_height, geometry.box_width):
            raise RuntimeError(f"rendered {video.shape[1:3]}, planned {geometry}")
        return video

    def _pipeline(self, sampling: Sampling) -> Any:
        pipe = self._pipelines.get(sampling)
        if pipe is not None:
            return pipe
        base = self._resident()
        with self._load_lock, pipeline_failures(self.family):
            if sampling not in self._pipelines:
                self._pipelines[sampling] = _variant(base, sampling)
            return self._pipelines[sampling]

    def _resident(self) -> Any:
        """The pipeline loaded from the checkpoint; its modules serve every variant."""
        if self._loaded is not None:
            return self._loaded
        with self._load_lock:
            if self._loaded is None:
                with pipeline_failures(self.family, "load its model"):
                    self._loaded = self._load()
            return self._loaded

    def _load(self) -> Any:
        configure_torch()
        device = pick_device()
        dtype = pick_dtype(device, self.spec.gpu_dtype)
        pipe = self._open_pipeline(dtype)
        applied = accelerate(pipe, self.spec.memory, self.spec.speed, str(device))
        log.info("loaded %s from %s (%s, %s)", self.label, self.folder, dtype, applied)
        return pipe

    def _open_pipeline(self, dtype: torch.dtype) -> Any:
        """The modular pipeline with the checkpoint's weights, not yet placed."""
        pipe = diffusers().ModularPipeline.from_pretrained(str(self.folder), local_files_only=True)
        pipe.load_components(dtype=dtype)
        return pipe


def _variant(base: Any, sampling: Sampling) -> Any:
    """A pipeline for ``sampling`` on ``base``'s modules: one copy of the weights in memory."""
    library = diffusers()
    if not sampling.distilled and base.guider.guidance_scale == sampling.guidance_scale:
        return base
    if sampling.distilled:
        pipe = library.WanAnimate2DistilledModularPipeline(
            blocks=library.WanAnimate2DistilledBlocks()
        )
    else:
        pipe = type(base)(blocks=base.blocks)
    guider = library.ClassifierFreeGuidance(guidance_scale=sampling.guidance_scale)
    pipe.update_components(**_model_components(base), guider=guider)
    return pipe


def _model_components(pipe: Any) -> dict[str, Any]:
    """The components loaded from the checkpoint (not the ones built from config)."""
    return {name: getattr(pipe, name) for name in pipe.pretrained_component_names}


def _driving_frames(
    reference: Frames, reference_fps: float | None, plan: _Plan
) -> list[Image.Image]:
    """The reference resampled to the plan's frame count and rate, as PIL frames."""
    indices = sample_indices(plan.frames, len(reference), reference_fps, plan.duration_s)
    return [Image.fromarray(reference[index][..., :3]).convert("RGB") for index in indices]


@contextlib.contextmanager
def _compile_free_on_cpu(device: torch.device) -> Iterator[None]:
    """Run eagerly on CPU.

    The transformer builds its attention block mask under ``torch.compile``; on CPU that costs
    about 20 s per new frame size, while eager flex attention is fast at the sizes a CPU can
    render anyway. On a GPU compilation is what makes the mask affordable, so it stays on.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    with torch.compiler.set_stance("force_eager"):
        yield


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)
