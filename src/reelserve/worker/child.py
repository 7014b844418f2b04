"""The engine process: opens the engines once, keeps them resident, renders one job at a time.

Started by :class:`reelserve.worker.supervisor.EngineSupervisor` with the ``spawn`` start
method (CUDA cannot be used in a forked child, and a fresh interpreter shares no state with
the worker). It opens its engines from an :class:`EngineFactory`, calls ``warm_up()`` on each
engine that has one, says :class:`Ready`, then serves :class:`Run` messages until
:class:`Shutdown` or until the worker's end of the pipe closes.

Cancel is cooperative: the progress callback handed to the engine reads any pending
:class:`Cancel` and raises ``JobCanceled``, which the engines let through and which unwinds the
pipeline at its next step. An engine that does not reach a step in time is killed by the
supervisor instead.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from reelserve.core.errors import GenerationFailed, JobCanceled
from reelserve.core.render import Engine, Mode
from reelserve.worker.messages import (
    Cancel,
    Done,
    EngineFactory,
    EngineInfo,
    Failed,
    Failure,
    FromEngine,
    LoadFailed,
    Progress,
    Ready,
    Run,
    Shutdown,
    stash_arrays,
    unstash_arrays,
)
from reelserve.worker.residency import Residency, free_memory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChildConfig:
    log_level: int
    # Release least recently used engines before loading another below this free GPU share.
    min_free_fraction: float


def serve(conn: Connection, factory: EngineFactory, config: ChildConfig) -> None:
    """The engine process's main function."""
    # Ctrl-C in a terminal reaches the whole process group; the worker decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s [engine %(process)d] %(name)s: %(message)s",
    )
    try:
        engines = _open(factory)
    except BaseException as exc:
        log.exception("could not open the engines of %s", factory.target)
        _send(conn, LoadFailed(f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        return
    residency = Residency(engines.values(), config.min_free_fraction)
    info = {
        mode: EngineInfo(engine.name, engine.random_weights) for mode, engine in engines.items()
    }
    if not _send(conn, Ready(os.getpid(), info)):
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the worker is gone
        if isinstance(message, Shutdown):
            return
        if isinstance(message, Run) and not _render(conn, engines, residency, message):
            return
        # A Cancel that arrives between jobs is for a job that already finished.


def _open(factory: EngineFactory) -> Mapping[Mode, Engine]:
    engines = factory.open()
    for engine in {id(engine): engine for engine in engines.values()}.values():
        warm_up = getattr(engine, "warm_up", None)
        if callable(warm_up):
            log.info("warming up %s", engine.name)
            warm_up()
    return engines


class _Stop(JobCanceled):
    """The worker asked this process to shut down in the middle of a job.

    A JobCanceled, so that the engines let it through unwrapped like any cancel.
    """


def _render(
    conn: Connection, engines: Mapping[Mode, Engine], residency: Residency, run: Run
) -> bool:
    """Run one job and send its outcome; False when the process should exit."""
    canceled = stopping = False

    def progress(fraction: float) -> None:
        nonlocal canceled, stopping
        while conn.poll():
            message = conn.recv()
            if isinstance(message, Cancel) and message.job_id == run.job_id:
                canceled = True
            elif isinstance(message, Shutdown):
                stopping = True
        if stopping:
            raise _Stop()
        if canceled:
            raise JobCanceled()
        conn.send(Progress(run.job_id, fraction))

    out_of_memory = False
    reply: FromEngine
    try:
        job = unstash_arrays(run.job)
        engine = engines[job.mode]
        residency.before_render(engine)
        rendition = engine.render(job, progress)
        reply = Done(run.job_id, stash_arrays(rendition, Path(run.scratch), f"out{run.job_id}"))
    except _Stop:
        return False
    except JobCanceled:
        reply = Failed(run.job_id, Failure.CANCELED, "canceled")
    except Exception as exc:
        # A broken pipe lands here too (raised by ``progress``); sending the reply then fails.
        reply = _failure(run.job_id, exc)
        out_of_memory = reply.failure is Failure.OUT_OF_MEMORY
    if out_of_memory:
        # Outside the except block: the traceback, and the tensors its frames held, are gone.
        free_memory()
        log.warning("out of GPU memory; freed what the failed job held")
    return _send(conn, reply)


def _failure(job_id: int, exc: Exception) -> Failed:
    details = "".join(traceback.format_exception(exc))
    if _is_out_of_memory(exc):
        return Failed(job_id, Failure.OUT_OF_MEMORY, "out of GPU memory", details)
    if isinstance(exc, GenerationFailed):
        return Failed(job_id, Failure.GENERATION, exc.message, details)
    log.error("render failed unexpectedly\n%s", details)
    return Failed(job_id, Failure.UNEXPECTED, f"{type(exc).__name__}: {exc}", details)


def _is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` or anything it was raised from is torch's out-of-memory error."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, torch.OutOfMemoryError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _send(conn: Connection, message: FromEngine) -> bool:
    try:
        conn.send(message)
    except OSError:
        return False  # the worker is gone
    return True
