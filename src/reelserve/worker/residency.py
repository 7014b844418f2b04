"""Which engines keep their pipelines loaded: least recently used first out, bounded by the
GPU's free memory.

Engines load their pipelines on first use. Before an engine that is not loaded renders, the
least recently used loaded engines are released until the GPU has ``min_free_fraction`` of
its memory free (or nothing else is left to release). On a machine without CUDA the probe
answers ``None`` and nothing is ever released: host memory is not the limit there.

An engine takes part when it has a ``loaded`` property and a ``release()`` method; others
stay as they are.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

# The fraction of the GPU's memory that is free, or None without a GPU.
FreeMemoryProbe = Callable[[], float | None]


@runtime_checkable
class Releasable(Protocol):
    name: str

    @property
    def loaded(self) -> bool: ...

    def release(self) -> None: ...


def gpu_free_fraction() -> float | None:
    """Free / total memory of the current CUDA device; None when torch has no CUDA here."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info()
    return float(free) / float(total) if total else None


def free_memory() -> None:
    """Collect garbage and hand the CUDA caching allocator's unused blocks back to the card."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class Residency:
    def __init__(
        self,
        engines: Iterable[object],
        min_free_fraction: float,
        probe: FreeMemoryProbe = gpu_free_fraction,
    ) -> None:
        unique = {id(engine): engine for engine in engines}
        self._releasable = [e for e in unique.values() if isinstance(e, Releasable)]
        self._min_free = min_free_fraction
        self._probe = probe
        # Least recently used first; engines warmed up at start but not yet used lead.
        self._order: list[object] = list(unique.values())

    def before_render(self, engine: object) -> None:
        """Make room for ``engine`` if it is about to load, and mark it most recently used."""
        if isinstance(engine, Releasable) and not engine.loaded:
            self._make_room(keep=engine)
        self._order = [other for other in self._order if other is not engine] + [engine]

    def _make_room(self, keep: object) -> None:
        for candidate in list(self._order):
            free = self._probe()
            if free is None or free >= self._min_free:
                return
            if candidate is keep or not isinstance(candidate, Releasable):
                continue
            if candidate.loaded:
                log.info(
                    "releasing %s: %.0f%% of GPU memory free, %.0f%% wanted before loading %s",
                    candidate.name,
                    100 * free,
                    100 * self._min_free,
                    getattr(keep, "name", "an engine"),
                )
                candidate.release()
                free_memory()
