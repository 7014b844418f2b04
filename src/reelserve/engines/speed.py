"""How an engine spec runs on a GPU: memory placement and speed options. Plain data.

A profile names these per engine; ``reelserve.engines.acceleration`` applies them to a loaded
pipeline. On CPU they are ignored (float32, resident, no compile): the tiny profile runs the
same loading code with none of them switched on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# resident: every component on the GPU (80 GB cards). model_offload: components move to the
# GPU one at a time. group_offload: groups of layers stream in on a side CUDA stream while the
# previous group computes (24-48 GB cards).
MemoryMode = Literal["resident", "model_offload", "group_offload"]
MEMORY_MODES: tuple[MemoryMode, ...] = ("resident", "model_offload", "group_offload")

# Step caches trade a little fidelity for fewer denoiser evaluations; only where a profile opts in.
StepCache = Literal["first_block", "mag"]
STEP_CACHES: tuple[StepCache, ...] = ("first_block", "mag")


@dataclass(frozen=True)
class SpeedOptions:
    # A diffusers attention backend name, or "auto" for the fastest one available here.
    attention_backend: str = "auto"
    # Regional torch.compile of the denoiser's repeated blocks, compiled once per worker.
    compile_repeated_blocks: bool = True
    # Store the denoiser's weights in FP8 and compute in the pipeline dtype.
    fp8_storage: bool = False
    step_cache: StepCache | None = None
    # Decode the VAE in tiles: needed for long or large clips on smaller cards.
    vae_tiling: bool = False
