"""Torch process settings shared by the engines: device, dtype, threads, seeds."""

from __future__ import annotations

import logging
import os
import secrets
import threading

import torch

from reelserve.engines.profiles import GpuDtype

log = logging.getLogger(__name__)

_configured = False
_configure_lock = threading.Lock()

_DTYPES: dict[GpuDtype, torch.dtype] = {
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float32": torch.float32,
}


def usable_cpus() -> int:
    """CPUs this process may run on (honours affinity masks and container cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not available on every platform
        return max(1, os.cpu_count() or 1)


def configure_torch() -> None:
    """Set process-wide torch threading once, before the first model runs.

    One intra-op thread per usable CPU and a single inter-op thread: a render is one chain of
    large ops, so a second thread pool would only compete with the first for the same cores.
    """
    global _configured
    with _configure_lock:
        if _configured:
            return
        threads = usable_cpus()
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            # Only settable before inter-op work has started; someone already ran torch code.
            log.debug("torch inter-op threads already fixed at %d", torch.get_num_interop_threads())
        _configured = True
        log.info("torch: %d intra-op threads, device %s", threads, pick_device())


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def pick_dtype(device: torch.device, gpu_dtype: GpuDtype) -> torch.dtype:
    """float32 on CPU; the profile's dtype on a GPU."""
    return _DTYPES[gpu_dtype] if device.type == "cuda" else torch.float32


def resolve_seed(seed: int | None) -> int:
    """The job's seed, or a fresh random one (53 bits: exact as a JSON/JavaScript number)."""
    return seed if seed is not None else secrets.randbits(53)


def seeded_generator(seed: int) -> torch.Generator:
    # A CPU generator gives the same noise for a seed on every device; diffusers moves the
    # sampled noise to the model's device.
    return torch.Generator(device="cpu").manual_seed(seed)
