"""Apply a spec's memory mode and speed options to a loaded pipeline.

On CUDA, in this order (each step assumes the ones before it):

1. FP8 storage of the denoiser (``enable_layerwise_casting``), before placement so the
   weights travel to the GPU at half their size;
2. placement: ``resident`` (``pipe.to``), ``model_offload`` (whole components move in turn)
   or ``group_offload`` (blocks of layers stream in on a side CUDA stream);
3. the attention backend (``set_attention_backend``), "auto" picking the fastest kernel that
   is installed and works for this GPU and model;
4. the opt-in step cache (``enable_cache``) and VAE tiling;
5. regional ``torch.compile`` of the denoiser's repeated blocks, last, so it traces the
   hooks the steps above installed.

On any other device the options are validated and the pipeline is moved there, nothing more:
the tiny profile runs float32 on CPU with none of them switched on.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch

from reelserve.engines.libraries import diffusers
from reelserve.engines.speed import MEMORY_MODES, STEP_CACHES, MemoryMode, SpeedOptions, StepCache

log = logging.getLogger(__name__)

AUTO = "auto"

# "auto" takes the first usable one. FlashAttention-3 is Hopper's fastest exact kernel;
# SageAttention (INT8 QK, the anchor setups' choice) comes next; cuDNN's fused attention beats
# FlashAttention-2 on Hopper and matches it on Ampere; PyTorch's own SDPA always works.
AUTO_ORDER = ("_flash_3", "sage", "_native_cudnn", "flash", "native")

# Backends that accept an attention mask; the others raise on one.
MASK_CAPABLE = frozenset(
    {"native", "_native_cudnn", "_native_efficient", "_native_math", "flex", "xformers"}
)

# Denoisers that pass attention masks (LTX-2 masks its text tokens in cross-attention and
# between its audio and video streams), so mask-free kernels cannot serve them.
_MASKED_ATTENTION_MODELS = frozenset({"LTX2VideoTransformer3DModel"})

# First-block cache: skip the remaining blocks while the first block's residual changes less
# than this (diffusers' default; larger is faster and blurrier).
_FIRST_BLOCK_THRESHOLD = 0.05


@dataclass(frozen=True)
class Acceleration:
    """What :func:`accelerate` switched on, for logs and benchmarks."""

    device: str
    memory: MemoryMode
    attention_backend: str | None = None
    fp8_storage: bool = False
    step_cache: StepCache | None = None
    vae_tiling: bool = False
    compiled: bool = False


def accelerate(pipe: Any, memory: MemoryMode, speed: SpeedOptions, device: str) -> Acceleration:
    """Place ``pipe`` on ``device`` per ``memory`` and switch on ``speed``'s options."""
    validate(memory, speed)
    denoisers = denoisers_of(pipe)
    if speed.step_cache is not None:
        for denoiser in denoisers:
            check_step_cache(denoiser, speed.step_cache)
    target = torch.device(device)
    if target.type != "cuda":
        pipe.to(target)
        return Acceleration(device=str(target), memory="resident")

    if speed.fp8_storage:
        for denoiser in denoisers:
            denoiser.enable_layerwise_casting(
                storage_dtype=torch.float8_e4m3fn, compute_dtype=denoiser.dtype
            )
    _place(pipe, memory, target)
    backend = choose_attention_backend(
        speed.attention_backend,
        usable_attention_backends(target),
        takes_masks=any(_takes_masks(denoiser) for denoiser in denoisers),
    )
    for denoiser in denoisers:
        denoiser.set_attention_backend(backend)
    if speed.step_cache is not None:
        for denoiser in denoisers:
            denoiser.enable_cache(_cache_config(speed.step_cache))
    tiled = speed.vae_tiling and _enable_vae_tiling(pipe)
    if speed.compile_repeated_blocks:
        for denoiser in denoisers:
            denoiser.compile_repeated_blocks()
    applied = Acceleration(
        device=str(target),
        memory=memory,
        attention_backend=backend,
        fp8_storage=speed.fp8_storage,
        step_cache=speed.step_cache,
        vae_tiling=tiled,
        compiled=speed.compile_repeated_blocks,
    )
    log.info("accelerated %s: %s", type(pipe).__name__, applied)
    return applied


def validate(memory: str, speed: SpeedOptions) -> None:
    """Raise ``ValueError`` naming the option and the rule when an option is unknown."""
    if memory not in MEMORY_MODES:
        raise ValueError(f"memory: {memory!r} is not one of {', '.join(MEMORY_MODES)}")
    if speed.step_cache is not None and speed.step_cache not in STEP_CACHES:
        raise ValueError(
            f"speed.step_cache: {speed.step_cache!r} is not one of {', '.join(STEP_CACHES)} "
            "(or none)"
        )
    backend = speed.attention_backend
    known = attention_backend_names()
    if backend != AUTO and backend not in known:
        raise ValueError(
            f"speed.attention_backend: {backend!r} is not 'auto' or a diffusers attention "
            f"backend ({', '.join(sorted(known))})"
        )


def attention_backend_names() -> frozenset[str]:
    """Every backend name this diffusers version knows."""
    names = diffusers("models.attention_dispatch").AttentionBackendName
    return frozenset(member.value for member in names)


def usable_attention_backends(device: torch.device) -> frozenset[str]:
    """The :data:`AUTO_ORDER` backends whose kernels are installed and run on ``device``."""
    if device.type != "cuda":
        return frozenset({"native"})
    dispatch = diffusers("models.attention_dispatch")
    major, _ = torch.cuda.get_device_capability(device)
    ampere_or_newer = major >= 8
    usable = {"native"}
    if dispatch._CAN_USE_FLASH_ATTN_3 and major == 9:  # FA3 kernels are Hopper-only
        usable.add("_flash_3")
    if dispatch._CAN_USE_SAGE_ATTN and ampere_or_newer:
        usable.add("sage")
    if dispatch._CAN_USE_FLASH_ATTN and ampere_or_newer:
        usable.add("flash")
    cudnn_available = torch.backends.cudnn.is_available()  # type: ignore[no-untyped-call]
    if cudnn_available and ampere_or_newer:
        usable.add("_native_cudnn")
    return frozenset(usable)


def choose_attention_backend(requested: str, usable: Collection[str], *, takes_masks: bool) -> str:
    """The backend to set: ``requested``, or for "auto" the first usable in :data:`AUTO_ORDER`.

    A model that passes attention masks only accepts mask-capable backends, and "auto" gives
    it PyTorch's SDPA, which picks its own fastest kernel that takes the mask (cuDNN or
    memory-efficient) per call; forcing cuDNN would fail on masks it does not support.
    """
    if requested == AUTO:
        if takes_masks:
            return "native"
        return next((name for name in AUTO_ORDER if name in usable), "native")
    if takes_masks and requested not in MASK_CAPABLE:
        raise ValueError(
            f"speed.attention_backend: {requested!r} cannot take attention masks, which this "
            f"model uses; choose one of {', '.join(sorted(MASK_CAPABLE))} or 'auto'"
        )
    return requested


def denoisers_of(pipe: Any) -> list[Any]:
    """The pipeline's denoising transformer(s): Wan2.2 A14B has a second, low-noise expert.

    Typed ``Any``: they are diffusers models, whose mixin methods carry no type information.
    """
    found: list[Any] = []
    for name in ("transformer", "transformer_2"):
        module = getattr(pipe, name, None)
        if isinstance(module, torch.nn.Module):
            found.append(module)
    return found


def check_step_cache(denoiser: torch.nn.Module, cache: StepCache) -> None:
    """Raise ``ValueError`` when diffusers cannot apply ``cache`` to ``denoiser``.

    Both caches hook each repeated block and need diffusers' metadata for the block class
    (which output is the hidden state); MagCache also needs magnitude ratios calibrated per
    model, which reelserve does not ship.
    """
    registry = diffusers("hooks._helpers").TransformerBlockRegistry
    model = type(denoiser).__name__
    block_names = set(getattr(denoiser, "_repeated_blocks", None) or ())
    blocks = {type(m) for m in denoiser.modules() if type(m).__name__ in block_names}
    for block in blocks:
        try:
            registry.get(block)
        except ValueError:
            raise ValueError(
                f"speed.step_cache: {cache!r} is not available for {model}: diffusers has no "
                f"cache metadata for its {block.__name__} blocks"
            ) from None
    if not blocks:
        raise ValueError(f"speed.step_cache: {cache!r} is not available for {model}")
    if cache == "mag":
        raise ValueError(
            f"speed.step_cache: 'mag' needs magnitude ratios calibrated for {model}, which "
            "are not shipped; use 'first_block'"
        )


def _cache_config(cache: StepCache) -> Any:
    if cache == "first_block":
        return diffusers().FirstBlockCacheConfig(threshold=_FIRST_BLOCK_THRESHOLD)
    raise ValueError(f"speed.step_cache: {cache!r} has no configuration")  # check_step_cache


def _takes_masks(denoiser: torch.nn.Module) -> bool:
    return type(denoiser).__name__ in _MASKED_ATTENTION_MODELS


def _place(pipe: Any, memory: MemoryMode, device: torch.device) -> None:
    if memory == "resident":
        pipe.to(device)
    elif memory == "model_offload":
        if not hasattr(pipe, "enable_model_cpu_offload"):
            raise ValueError(
                f"memory: 'model_offload' is not available for {type(pipe).__name__} "
                "(a modular pipeline); use 'group_offload'"
            )
        pipe.enable_model_cpu_offload(device=device)
    else:
        _group_offload(pipe, device)


def _group_offload(pipe: Any, device: torch.device) -> None:
    """Stream each model in from CPU memory one group at a time, overlapping copy and compute.

    diffusers models are grouped by their repeated blocks (one block per group); other modules
    (the transformers text and image encoders, whose layers sit deeper) leaf by leaf.
    """
    model_class, hooks = diffusers().ModelMixin, diffusers("hooks")
    for name, module in pipe.components.items():
        if not isinstance(module, torch.nn.Module):
            continue
        by_block = isinstance(module, model_class)
        hooks.apply_group_offloading(
            module,
            onload_device=device,
            offload_type="block_level" if by_block else "leaf_level",
            num_blocks_per_group=1 if by_block else None,
            use_stream=True,
            record_stream=True,
        )
        log.debug("group offload of %s (%s)", name, "by block" if by_block else "by leaf")


def _enable_vae_tiling(pipe: Any) -> bool:
    vae = getattr(pipe, "vae", None)
    if vae is None or not hasattr(vae, "enable_tiling"):
        return False
    vae.enable_tiling()
    return True
