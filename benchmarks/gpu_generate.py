"""Seconds per stage of a 5 s 1280x720 clip per mode, at the production models' full size.

Builds each engine family's models at full architecture size with random weights directly on
the GPU in bf16 (``reelserve.engines.fullsize``: the published configurations), renders every
mode through the engines (the code a worker runs), first with stock diffusers settings, then
with reelserve's (``accelerate()`` with the profile's speed options) on the same weights, and
prints per mode the seconds of each stage, the total, peak GPU memory and the denoiser's
achieved TFLOP/s, then reelserve's speed-up.

    python benchmarks/gpu_generate.py --families ltx2          # one 80 GB GPU, ~5-6 min
    python benchmarks/gpu_generate.py --families wan_animate   # one 80 GB GPU, ~7-8 min
    python benchmarks/gpu_generate.py --tiny                   # CPU: tiny models, same table

(Estimates; both families in one run stop at ``--budget-s`` with the last rows skipped.)

Honesty notes, printed with the table as well:

- Random weights do the same arithmetic as real ones; the pictures are noise.
- Each render runs ``--measure-steps`` denoising steps, not the profile's count; the denoise
  column is the steady per-step time (the first call, which compiles, left out) times the
  profile's steps, and ``first call`` shows what compilation and first-use costs added once.
- Wan-Animate-2's generation attention needs ``torch.compile`` (flex attention), so its stock
  run compiles the blocks too; stock means native attention and nothing else switched on.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from reelserve.core.render import Mode, RenderJob
from reelserve.engines import get_profile
from reelserve.engines.fullsize import build_full_size, parameter_count
from reelserve.engines.libraries import diffusers
from reelserve.engines.ltx2 import LTX2Engine
from reelserve.engines.profiles import (
    Checkpoint,
    EngineFamily,
    EngineSpec,
    QualityTable,
    RenderSize,
    Sampling,
)
from reelserve.engines.sizing import segment_count
from reelserve.engines.speed import MemoryMode, SpeedOptions
from reelserve.engines.tiny import (
    ensure_tiny_checkpoint,
    gemma_style_tokenizer,
    umt5_style_tokenizer,
)
from reelserve.engines.wan_animate import WanAnimateEngine
from reelserve.engines.warmup import ignore_progress, warm_up_job
from reelserve.media.mp4 import write_mp4

FAMILY_MODES: dict[EngineFamily, tuple[Mode, ...]] = {
    "ltx2": (Mode.TEXT, Mode.IMAGE, Mode.FIRST_LAST),
    "wan_animate": (Mode.MOTION,),
}
MODE_NAMES = {"text": Mode.TEXT, "image": Mode.IMAGE, "first_last": Mode.FIRST_LAST}
MODE_NAMES["motion"] = Mode.MOTION

# Denoising steps each render actually runs. Wan-Animate-2 renders two segments, and the
# second one already runs compiled code, so one step per segment gives the steady state.
MEASURED_STEPS: dict[EngineFamily, int] = {"ltx2": 2, "wan_animate": 1}
# The profiles' standard quality: LTX-2.3 distilled samples 8 steps, Wan-Animate-2 distilled 10,
# both without classifier-free guidance.
PROFILE_STEPS: dict[EngineFamily, int] = {"ltx2": 8, "wan_animate": 10}
# The model's window: Wan-Animate-2 renders 81-frame segments (a 5 s clip takes two).
SEGMENT_FRAMES = {"full": 81, "tiny": 9}
# Stand-in prompt lengths: the pipelines pad to these, so the encoders see the real shapes.
GEMMA_TOKENS = 1024
UMT5_TOKENS = 512

WIDTH, HEIGHT = 1280, 720
Setting = tuple[MemoryMode, SpeedOptions]


def stock_setting(family: EngineFamily) -> Setting:
    """The diffusers documentation's recipe for each model, with native attention."""
    if family == "ltx2":
        # LTX2Pipeline's example: ``pipe.enable_model_cpu_offload()`` (its 35B parameters,
        # Gemma included, do not fit an 80 GB card next to an untiled 720p VAE decode).
        return "model_offload", SpeedOptions(
            attention_backend="native", compile_repeated_blocks=False
        )
    # ``pipe.to("cuda")``; Wan-Animate-2's block-masked attention needs its blocks compiled
    # (uncompiled flex attention materialises the whole score matrix), so stock compiles too.
    return "resident", SpeedOptions(attention_backend="native", compile_repeated_blocks=True)


# Without ``--profile``: everything resident on an 80 GB card, LTX-2's transformer stored in
# FP8 and its VAE decoding in tiles so that it fits; fastest attention; compiled blocks.
DEFAULT_SETTINGS: dict[EngineFamily, Setting] = {
    "ltx2": ("resident", SpeedOptions(fp8_storage=True, vae_tiling=True)),
    "wan_animate": ("resident", SpeedOptions()),
}


def reelserve_setting(family: EngineFamily, profile: str | None) -> Setting:
    """The named profile's options for ``family``, else :data:`DEFAULT_SETTINGS`."""
    if profile is not None:
        for spec in get_profile(profile).specs():
            if spec.family == family:
                return spec.memory, spec.speed
    return DEFAULT_SETTINGS[family]


# --- building the pipelines -------------------------------------------------------------------


def full_size_modules(family: EngineFamily, device: torch.device) -> dict[str, Any]:
    modules: dict[str, Any] = dict(build_full_size(family, device, torch.bfloat16))
    if family == "ltx2":
        modules["tokenizer"] = gemma_style_tokenizer(GEMMA_TOKENS)
    else:
        modules["tokenizer"] = umt5_style_tokenizer(UMT5_TOKENS)
    return modules


def tiny_modules(family: EngineFamily, work: Path) -> dict[str, Any]:
    """The tiny checkpoint's modules, loaded the way a worker loads them."""
    folder = ensure_tiny_checkpoint(family, work / family)
    if family == "ltx2":
        pipe = diffusers().LTX2Pipeline.from_pretrained(str(folder), local_files_only=True)
    else:
        pipe = diffusers().ModularPipeline.from_pretrained(str(folder), local_files_only=True)
        pipe.load_components(dtype=torch.float32)
    names = ("transformer", "vae", "text_encoder", "tokenizer")
    extra = ("connectors", "audio_vae", "vocoder") if family == "ltx2" else ("image_encoder",)
    return {name: getattr(pipe, name) for name in (*names, *extra)}


def assemble(family: EngineFamily, modules: dict[str, Any]) -> Any:
    """A pipeline on ``modules``, built the way the production checkpoints are laid out."""
    dl = diffusers()
    if family == "ltx2":
        return dl.LTX2Pipeline(scheduler=dl.FlowMatchEulerDiscreteScheduler(), **modules)
    pipe = dl.WanAnimate2ModularPipeline(blocks=dl.WanAnimate2Blocks())
    pipe.update_components(**modules, scheduler=dl.FlowMatchEulerDiscreteScheduler(shift=5.0))
    return pipe


def engine_on(family: EngineFamily, pipeline: Any, spec: EngineSpec) -> LTX2Engine:
    """The family's engine, taking ``pipeline`` instead of loading a checkpoint folder."""
    base: type[Any] = LTX2Engine if family == "ltx2" else WanAnimateEngine

    class InMemory(base):
        def _open_pipeline(self, dtype: torch.dtype) -> Any:
            return pipeline

    engine: LTX2Engine = InMemory(
        name=f"benchmark/{family}", spec=spec, folder=Path("(in memory)"), random_weights=True
    )
    return engine


def bench_spec(family: EngineFamily, tiny: bool, setting: Setting) -> EngineSpec:
    steps = PROFILE_STEPS[family]
    sampling = Sampling(steps=steps, guidance_scale=1.0, distilled=True)
    memory, speed = setting
    return EngineSpec(
        family=family,
        checkpoint=Checkpoint(path=Path("(in memory)")),
        quality=QualityTable(standard=sampling, pro=sampling),
        render_size=RenderSize(long_side=64, frames=17) if tiny else RenderSize(),
        segment_frames=SEGMENT_FRAMES["tiny" if tiny else "full"],
        memory=memory,
        speed=speed,
    )


# --- measuring --------------------------------------------------------------------------------


class StageClock:
    """Seconds each stage takes, from hooks on the pipeline's modules (synchronised on CUDA)."""

    def __init__(self, pipe: Any, family: EngineFamily, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.seconds: dict[str, float] = defaultdict(float)
        self.denoiser_calls: list[float] = []
        self.last_call: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._undo: list[Callable[[], None]] = []
        encoders = ("text_encoder", "connectors", "image_encoder")
        for name in encoders:
            module = getattr(pipe, name, None)
            if module is not None:
                self._time_forward(module, "encode")
        self._time_forward(pipe.transformer, "denoise", calls=True)
        self._time_method(pipe.vae, "decode", "decode")
        if family == "ltx2":
            self._time_method(pipe.audio_vae, "decode", "decode")
            self._time_forward(pipe.vocoder, "decode")

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def remove(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _time_forward(self, module: torch.nn.Module, stage: str, calls: bool = False) -> None:
        started: list[float] = []

        def before(module: torch.nn.Module, args: Any, kwargs: Any) -> None:
            if calls:
                self.last_call = (args, kwargs)
            started.append(self.now())

        def after(module: torch.nn.Module, args: Any, kwargs: Any, output: Any) -> None:
            elapsed = self.now() - started.pop()
            self.seconds[stage] += elapsed
            if calls:
                self.denoiser_calls.append(elapsed)

        pre = module.register_forward_pre_hook(before, with_kwargs=True)
        post = module.register_forward_hook(after, with_kwargs=True)
        self._undo += [pre.remove, post.remove]

    def _time_method(self, owner: Any, method: str, stage: str) -> None:
        original = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = self.now()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += self.now() - started

        setattr(owner, method, timed)
        self._undo.append(lambda: delattr(owner, method))


@dataclass
class Row:
    family: str
    mode: str
    setting: str
    encode: float
    denoise: float
    decode: float
    mux: float
    other: float
    first_call_extra: float
    peak_gib: float | None
    tflops: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.encode + self.denoise + self.decode + self.mux + self.other


@dataclass(frozen=True)
class DenoiseEstimate:
    seconds: float  # the profile's steps at the steady per-step time
    step_seconds: float  # one steady step (one generation call)
    first_call_extra: float  # what the measured run spent beyond steady state


def estimate_denoise(
    family: EngineFamily, calls: list[float], measured_steps: int, segments: int
) -> DenoiseEstimate:
    """Scale the measured denoiser calls to the profile's step count.

    LTX-2 makes one call per step (guidance, when on, is batched into it). Wan-Animate-2 makes,
    per segment, one reference pass and then one call per step; the last segment's calls ran
    on compiled code, so they are the steady state.
    """
    profile_steps = PROFILE_STEPS[family]
    if family == "ltx2":
        steady = statistics.median(calls[1:]) if len(calls) > 1 else calls[0]
        return DenoiseEstimate(
            seconds=steady * profile_steps,
            step_seconds=steady,
            first_call_extra=max(0.0, sum(calls) - steady * len(calls)),
        )
    per_segment = 1 + measured_steps
    last = calls[-per_segment:]
    reference, steps = last[0], statistics.median(last[1:])
    steady_run = segments * (reference + measured_steps * steps)
    return DenoiseEstimate(
        seconds=segments * (reference + profile_steps * steps),
        step_seconds=steps,
        first_call_extra=max(0.0, sum(calls) - steady_run),
    )


def step_flops(family: EngineFamily, transformer: torch.nn.Module, call: Any) -> float | None:
    """FLOPs of one denoiser step.

    LTX-2: counted by ``FlopCounterMode`` replaying the last captured call eagerly. Wan-Animate-2:
    analytic, because its generation pass reads a reference KV cache and a block mask that
    cannot be replayed: every block's token-wise weights on each generation token, plus self-
    attention over the generation tokens and one reference frame, plus cross-attention to the
    text and CLIP image tokens.
    """
    if call is None:
        return None
    args, kwargs = call
    if family == "ltx2":
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.no_grad(), torch.compiler.set_stance("force_eager"), counter:
            transformer(*args, **kwargs)
        return float(counter.get_total_flops())
    config: Any = transformer.config
    named = inspect.signature(transformer.forward).bind(*args, **kwargs).arguments
    tokens = int(named["seq_len"])
    latents = named["hidden_states"][0]
    patch = config.patch_size
    frame_tokens = (latents.shape[-2] // patch[1]) * (latents.shape[-1] // patch[2])
    width, layers = int(config.dim), int(config.num_layers)
    blocks = transformer.get_submodule("blocks")
    block_weights = parameter_count(blocks)
    # The cross-attention's key/value projections (text and image) see context tokens only.
    context_weights = 4 * width * width * layers
    context_tokens = int(config.text_len) + 257  # CLIP ViT-H/14 at 224 px: 16 x 16 + 1
    matmuls = 2 * (block_weights - context_weights) * tokens
    self_attention = 4 * layers * width * tokens * (tokens + frame_tokens)
    cross_attention = 4 * layers * width * tokens * context_tokens
    return float(matmuls + self_attention + cross_attention)


def measure(
    engine: LTX2Engine,
    family: EngineFamily,
    mode: Mode,
    setting_name: str,
    device: torch.device,
    measured_steps: int,
    flops_cache: dict[tuple[str, Mode], float | None],
) -> Row:
    pipe = engine_pipeline(engine, family)
    job: RenderJob = warm_up_job(mode, "standard")
    clock = StageClock(pipe, family, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        started = clock.now()
        rendition = engine._render(job, ignore_progress, steps=measured_steps)
        rendered = clock.now()
    finally:
        clock.remove()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    with tempfile.TemporaryDirectory() as folder:
        muxed = time.perf_counter()
        write_mp4(
            Path(folder) / "clip.mp4",
            rendition.frames,
            rendition.audio,
            rendition.sample_rate,
            width=WIDTH,
            height=HEIGHT,
            num_frames=job.num_frames,
            fps=int(job.fps),
        )
        mux = time.perf_counter() - muxed
    render_frames = engine.spec.render_size.frames or job.num_frames
    segments = segment_count(render_frames, engine.spec.segment_frames) if family != "ltx2" else 1
    denoise = estimate_denoise(family, clock.denoiser_calls, measured_steps, segments)
    if engine.spec.memory != "resident":
        # Offloaded weights move in again at the first call of every job: a per-job cost.
        denoise = replace(
            denoise, seconds=denoise.seconds + denoise.first_call_extra, first_call_extra=0.0
        )
    key = (family, mode)
    if key not in flops_cache:
        flops_cache[key] = step_flops(family, pipe.transformer, clock.last_call)
    clock.last_call = None
    flops = flops_cache[key]
    seconds = clock.seconds
    measured_denoise = sum(clock.denoiser_calls)
    return Row(
        family=family,
        mode=mode.value,
        setting=setting_name,
        encode=seconds["encode"],
        denoise=denoise.seconds,
        decode=seconds["decode"],
        mux=mux,
        other=max(
            0.0, (rendered - started) - seconds["encode"] - measured_denoise - seconds["decode"]
        ),
        first_call_extra=denoise.first_call_extra,
        peak_gib=peak,
        tflops=flops / denoise.step_seconds / 1e12 if flops else None,
    )


def engine_pipeline(engine: LTX2Engine, family: EngineFamily) -> Any:
    """The loaded pipeline the engine renders text (LTX-2) or motion (Wan-Animate-2) with."""
    if family == "ltx2":
        return engine._resident().text
    return engine._resident()


# --- output -----------------------------------------------------------------------------------

COLUMNS = (
    ("family", 12, "s"),
    ("mode", 18, "s"),
    ("setting", 10, "s"),
    ("encode", 8, ".2f"),
    ("denoise", 9, ".2f"),
    ("decode", 8, ".2f"),
    ("mux", 7, ".2f"),
    ("other", 7, ".2f"),
    ("total", 8, ".2f"),
    ("first call", 11, ".1f"),
    ("peak GiB", 9, ".1f"),
    ("TFLOP/s", 9, ".4g"),
)


def header() -> str:
    return "".join(
        f"{name:>{width}}" if i > 2 else f"{name:<{width}}"
        for i, (name, width, _) in enumerate(COLUMNS)
    )


def format_row(row: Row) -> str:
    values = (
        row.family,
        row.mode,
        row.setting,
        row.encode,
        row.denoise,
        row.decode,
        row.mux,
        row.other,
        row.total,
        row.first_call_extra,
        row.peak_gib,
        row.tflops,
    )
    cells = []
    for (_, width, spec), value in zip(COLUMNS, values, strict=True):
        # Numbers keep one space before them even when they fill their column.
        if value is None:
            cells.append(f" {'n/a':>{width - 1}}")
        elif spec == "s":
            cells.append(f"{value:<{width}}")
        else:
            cells.append(f" {value:>{width - 1}{spec}}")
    return "".join(cells)


def cause(error: BaseException) -> str:
    """The error and what it wraps (engines wrap library errors, keeping the original)."""
    chain = [repr(error)]
    while error.__cause__ is not None:
        error = error.__cause__
        chain.append(repr(error))
    return " <- ".join(chain)


def say(text: str = "") -> None:
    print(text, flush=True)


@contextmanager
def timed(label: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    say(f"  {label}: {time.perf_counter() - started:.1f} s")


# --- main -------------------------------------------------------------------------------------


def run_family(
    family: EngineFamily,
    modes: list[Mode],
    args: argparse.Namespace,
    device: torch.device,
    work: Path,
) -> list[Row]:
    say(f"{family}:")
    with timed("built with random weights"):
        modules = tiny_modules(family, work) if args.tiny else full_size_modules(family, device)
        pipeline = assemble(family, modules)
    params = sum(parameter_count(m) for m in modules.values() if isinstance(m, torch.nn.Module))
    say(f"  {params:,} parameters")
    del modules
    rows: list[Row] = []
    flops_cache: dict[tuple[str, Mode], float | None] = {}
    settings = (
        ("stock", stock_setting(family)),
        ("reelserve", reelserve_setting(family, args.profile)),
    )
    steps = args.measure_steps or MEASURED_STEPS[family]
    for name, setting in settings:
        if hasattr(pipeline, "remove_all_hooks"):
            pipeline.remove_all_hooks()  # the previous setting's offload hooks
        engine = engine_on(family, pipeline, bench_spec(family, args.tiny, setting))
        try:
            with timed(f"{name}: placed and options applied ({setting[0]}, {setting[1]})"):
                engine.warm()
        except Exception as error:  # report and go on: one failure must not hide the rest
            say(f"  {name}: could not apply the options: {cause(error)}")
            continue
        for mode in modes:
            if time.monotonic() > args.deadline:
                say(f"  {mode.value} {name}: skipped, past --budget-s")
                continue
            try:
                row = measure(engine, family, mode, name, device, steps, flops_cache)
            except Exception as error:
                say(f"  {mode.value} {name}: failed: {cause(error)}")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            rows.append(row)
            say(format_row(row))
        del engine
    del pipeline
    gc.collect()
    torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models on this machine's device")
    parser.add_argument("--families", default="ltx2,wan_animate")
    parser.add_argument("--modes", default="text,image,first_last,motion")
    parser.add_argument(
        "--measure-steps",
        type=int,
        default=0,
        help="denoising steps each render runs (default: LTX-2 2, Wan-Animate-2 1)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=540.0,
        help="start no new render after this many seconds (keeps one run under 10 minutes)",
    )
    parser.add_argument(
        "--profile", default=None, help="take reelserve's options from this profile"
    )
    args = parser.parse_args(argv)
    args.deadline = time.monotonic() + args.budget_s
    # Engines log failures with their tracebacks; show them on stderr.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not args.tiny and device.type != "cuda":
        parser.error("full-size models need a CUDA GPU; use --tiny on this machine")
    families: list[EngineFamily] = [f for f in FAMILY_MODES if f in args.families.split(",")]
    wanted = {MODE_NAMES[name] for name in args.modes.split(",")}

    say(describe_device(device, args))
    say(header())
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as work:
        for family in families:
            modes = [mode for mode in FAMILY_MODES[family] if mode in wanted]
            if modes and time.monotonic() > args.deadline:
                say(f"{family}: skipped, past --budget-s")
            elif modes:
                rows += run_family(family, modes, args, device, Path(work))
    say()
    say("all rows:")
    say(header())
    for row in rows:
        say(format_row(row))
    say()
    say("reelserve speed-up (stock total / reelserve total):")
    by_key = {(row.family, row.mode, row.setting): row for row in rows}
    for (family, mode, setting), row in by_key.items():
        tuned = by_key.get((family, mode, "reelserve"))
        if setting == "stock" and tuned is not None:
            say(
                f"  {family:<12}{mode:<18}{row.total / tuned.total:6.2f}x end to end, "
                f"{row.denoise / tuned.denoise:.2f}x denoising"
            )


def describe_device(device: torch.device, args: argparse.Namespace) -> str:
    import diffusers as library

    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        name = f"{torch.cuda.get_device_name(device)} (sm{major}{minor})"
    else:
        name = f"CPU ({torch.get_num_threads()} threads)"
    size = "tiny models (random weights)" if args.tiny else "full-size models, random weights, bf16"
    steps = ", ".join(f"{family} {steps}" for family, steps in PROFILE_STEPS.items())
    measured = args.measure_steps or ", ".join(
        f"{family} {steps}" for family, steps in MEASURED_STEPS.items()
    )
    return (
        f"{name}; torch {torch.__version__}, diffusers {library.__version__}; {size}\n"
        f"one 5 s {WIDTH}x{HEIGHT} clip per mode (24 fps, 121 frames)"
        f"{' at the tiny render size' if args.tiny else ''}; each render runs "
        f"{measured} denoising steps, and the denoise column extrapolates the steady "
        f"per-step time to the profile's steps ({steps}).\n"
        "columns: seconds of text/image encoding, denoising (extrapolated), VAE + audio "
        "decoding, MP4 muxing, everything else (preprocessing, VAE encoding of inputs, "
        "scheduler), their total; 'first call' is the one-off cost (compilation) the first "
        "denoiser call added (with offload its weight transfers recur per job and count in "
        "denoise); peak GPU memory; the denoiser's achieved TFLOP/s over one step."
    )


if __name__ == "__main__":
    main(sys.argv[1:])
