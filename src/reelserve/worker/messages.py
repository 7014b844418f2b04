"""What the worker and its engine process say to each other over their pipe.

Every message is a frozen dataclass, pickled by ``multiprocessing.Connection``. Pixel data
never travels in a message: arrays above :data:`INLINE_ARRAY_BYTES` are written to ``.npy``
files in the job's scratch folder and replaced by an :class:`ArrayFile` that the other side
maps back in (see :func:`stash_arrays`). A 5 s 720p clip is about 330 MB of frames; through a
file it costs one write and a page-cache mapping instead of a pickle, a pipe copy and an
unpickle (``benchmarks/engine_process.py`` measures both).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from reelserve.core.render import Engine, Mode, RenderJob, Rendition

# Smaller arrays (a start image) ride along in the message: a file would cost more than it saves.
INLINE_ARRAY_BYTES = 1 << 20

T = TypeVar("T")


@dataclass(frozen=True)
class EngineFactory:
    """Where the engine process gets its engines: ``"module:function"`` called with ``kwargs``.

    The function returns ``{Mode: Engine}``, like :func:`reelserve.engines.open_engines`.
    Only this reference crosses the process boundary, so the kwargs must be picklable.
    """

    target: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def open(self) -> Mapping[Mode, Engine]:
        module_name, _, function_name = self.target.partition(":")
        if not module_name or not function_name:
            raise ValueError(f"engine factory {self.target!r} is not 'module:function'")
        function = getattr(importlib.import_module(module_name), function_name)
        engines: Mapping[Mode, Engine] = function(**self.kwargs)
        return engines


@dataclass(frozen=True)
class ArrayFile:
    """An array written to ``path`` with ``np.save``; read back memory-mapped (copy-on-write)."""

    path: str

    def load(self) -> np.ndarray[Any, Any]:
        array: np.ndarray[Any, Any] = np.load(self.path, mmap_mode="c")
        return array


# -- worker → engine process ---------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    job_id: int
    # Array fields may be ArrayFile references (hence the loose type).
    job: RenderJob
    scratch: str


@dataclass(frozen=True)
class Cancel:
    job_id: int


@dataclass(frozen=True)
class Shutdown:
    pass


# -- engine process → worker ---------------------------------------------------------------


@dataclass(frozen=True)
class EngineInfo:
    name: str
    random_weights: bool


@dataclass(frozen=True)
class Ready:
    pid: int
    engines: Mapping[Mode, EngineInfo]


@dataclass(frozen=True)
class LoadFailed:
    """The engines could not be opened or warmed; the process exits after sending this."""

    message: str
    details: str


@dataclass(frozen=True)
class Progress:
    job_id: int
    fraction: float


@dataclass(frozen=True)
class Done:
    job_id: int
    rendition: Rendition


class Failure(StrEnum):
    CANCELED = "canceled"  # stopped at a step after Cancel
    OUT_OF_MEMORY = "out_of_memory"  # the GPU ran out; memory was freed, the process lives
    GENERATION = "generation"  # GenerationFailed: the message is for the user
    UNEXPECTED = "unexpected"  # anything else; details are for the logs


@dataclass(frozen=True)
class Failed:
    job_id: int
    failure: Failure
    message: str
    details: str = ""


ToEngine = Run | Cancel | Shutdown
FromEngine = Ready | LoadFailed | Progress | Done | Failed


def stash_arrays(value: T, folder: Path, prefix: str) -> T:
    """``value`` (a dataclass) with its large array fields written to ``folder`` as files."""
    changes: dict[str, Any] = {}
    for item in dataclasses.fields(value):  # type: ignore[arg-type]
        array = getattr(value, item.name)
        if isinstance(array, np.ndarray) and array.nbytes > INLINE_ARRAY_BYTES:
            path = folder / f"{prefix}-{item.name}.npy"
            np.save(path, array, allow_pickle=False)
            changes[item.name] = ArrayFile(str(path))
    return dataclasses.replace(value, **changes) if changes else value  # type: ignore[type-var]


def unstash_arrays(value: T) -> T:
    """``value`` with every :class:`ArrayFile` field mapped back into an array."""
    changes = {
        item.name: getattr(value, item.name).load()
        for item in dataclasses.fields(value)  # type: ignore[arg-type]
        if isinstance(getattr(value, item.name), ArrayFile)
    }
    return dataclasses.replace(value, **changes) if changes else value  # type: ignore[type-var]
