"""Runs the engines in a spawned child process and stands in for them in the worker.

The worker keeps its ``{Mode: Engine}`` map; each entry is a :class:`ChildEngine` that forwards
``render`` to the :class:`EngineSupervisor`, which owns one long-lived engine process
(:mod:`reelserve.worker.child`). What the split buys:

- A cancel or a lost lease stops the job at its next step (the child raises from its own
  progress callback); a child that does not stop within ``cancel_grace_s`` is killed and a
  new one started, so a wedged kernel never holds the GPU for the next task.
- A crash of the model code (segfault, SIGKILL, the kernel's OOM killer) costs only the
  engine process: the job raises :class:`EngineCrashed`, which the runner treats as an
  unknown error (failed with a retry, within the task's attempts), and a new engine process
  is started at once for the next job.
- CUDA out of memory frees what the job held and keeps the process (and the other resident
  weights) alive; the job fails with :data:`OUT_OF_MEMORY_MESSAGE`, without a retry.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import NoReturn

from reelserve.core.errors import GenerationFailed
from reelserve.core.render import Engine, Mode, ProgressFn, RenderJob, Rendition
from reelserve.worker.child import ChildConfig, serve
from reelserve.worker.messages import (
    Cancel,
    Done,
    EngineFactory,
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

log = logging.getLogger(__name__)

OUT_OF_MEMORY_MESSAGE = (
    "The GPU ran out of memory for this clip; reduce duration or use a smaller profile."
)


class EngineCrashed(RuntimeError):
    """The engine process died during a job (a new one is started for the next job)."""


class EngineStartFailed(RuntimeError):
    """The engine process could not open or warm up its engines."""


class EngineError(RuntimeError):
    """The engine raised something unexpected (not a GenerationFailed) during a job."""


class CancelOutcome(StrEnum):
    STOPPED = "stopped"  # the engine stopped at a step
    FINISHED = "finished"  # the job ended on its own before it saw the cancel
    KILLED = "killed"  # no answer within the grace period: killed and replaced
    CRASHED = "crashed"  # the process died while stopping


@dataclass(frozen=True)
class EngineProcessConfig:
    # Where job inputs and outputs are exchanged as .npy files (deleted after each job).
    scratch_dir: Path
    # How long a canceled job may take to reach its next step before the process is killed.
    cancel_grace_s: float = 10.0
    # GPU: before an engine loads, release least recently used ones below this free share.
    min_free_fraction: float = 0.5
    # While the engine reports nothing (loading, decoding), the job's progress function is
    # called again this often so that a cancel or a lost lease is still seen.
    check_interval_s: float = 0.5


class _ChildGone(Exception):
    pass


@dataclass
class _Child:
    process: BaseProcess
    conn: Connection
    ready: Ready | None = None

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid


class EngineSupervisor:
    """One engine process, replaced whenever it dies or has to be killed."""

    def __init__(self, factory: EngineFactory, config: EngineProcessConfig) -> None:
        self.factory = factory
        self.config = config
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._job_ids = 0
        self.last_cancel: CancelOutcome | None = None
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Ready:
        """Spawn the engine process and wait until its engines are open and warm.

        Raises :class:`EngineStartFailed` with the child's error when they cannot be opened.
        """
        started = time.perf_counter()
        with self._lock:
            ready = self._ready_child().ready
        assert ready is not None
        log.info(
            "engine process %d ready in %.1f s: %s",
            ready.pid,
            time.perf_counter() - started,
            ", ".join(sorted({info.name for info in ready.engines.values()})),
        )
        atexit.register(self.close)
        return ready

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.pid if child is not None else None

    def engines(self) -> dict[Mode, Engine]:
        """One stand-in engine per mode the engine process serves (after :meth:`start`)."""
        child = self._child
        if child is None or child.ready is None:
            raise RuntimeError("the engine process has not started")
        return {
            mode: ChildEngine(self, info.name, info.random_weights)
            for mode, info in child.ready.engines.items()
        }

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the engine process to exit; kill it if it does not within ``timeout_s``."""
        self._closed = True
        atexit.unregister(self.close)
        child, self._child = self._child, None
        if child is None:
            return
        with contextlib.suppress(OSError):
            child.conn.send(Shutdown())
        child.process.join(timeout_s)
        if child.process.is_alive():
            log.warning("engine process %d did not exit; killing it", child.pid)
            child.process.kill()
            child.process.join()
        child.conn.close()

    # -- one job --------------------------------------------------------------------------

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition:
        with self._lock:
            child = self._ready_child()
            self._job_ids += 1
            job_id = self._job_ids
            self.config.scratch_dir.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix=f"job{job_id}-", dir=self.config.scratch_dir))
            try:
                run = Run(job_id, stash_arrays(job, folder, "in"), str(folder))
                try:
                    child.conn.send(run)
                except OSError:
                    self._crashed(child)
                return self._follow(child, job_id, progress)
            finally:
                # Unlinking is safe for the memory-mapped output: the mapping keeps the data.
                shutil.rmtree(folder, ignore_errors=True)

    def _follow(self, child: _Child, job_id: int, progress: ProgressFn) -> Rendition:
        last = 0.0
        while True:
            try:
                message = self._receive(child, self.config.check_interval_s)
            except _ChildGone:
                self._crashed(child)
            try:
                if message is None:
                    if last < 1.0:
                        progress(last)
                    continue
                if isinstance(message, Progress):
                    if message.job_id == job_id:
                        last = max(last, message.fraction)
                        progress(message.fraction)
                    continue
            except BaseException:
                # JobCanceled or LeaseLost from the tracker: stop the engine, then let the
                # worker see the very same exception.
                self._cancel(child, job_id)
                raise
            if isinstance(message, Done) and message.job_id == job_id:
                return unstash_arrays(message.rendition)
            if isinstance(message, Failed) and message.job_id == job_id:
                raise self._error(child, message)

    def _cancel(self, child: _Child, job_id: int) -> None:
        with contextlib.suppress(OSError):
            child.conn.send(Cancel(job_id))
        deadline = time.monotonic() + self.config.cancel_grace_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = self._receive(child, remaining)
            except _ChildGone:
                self.last_cancel = CancelOutcome.CRASHED
                self._replace(child, "died while stopping a canceled job")
                return
            if isinstance(message, Done | Failed) and message.job_id == job_id:
                stopped = isinstance(message, Failed) and message.failure is Failure.CANCELED
                self.last_cancel = CancelOutcome.STOPPED if stopped else CancelOutcome.FINISHED
                log.info("engine process %d: canceled job %s", child.pid, self.last_cancel.value)
                return
        self.last_cancel = CancelOutcome.KILLED
        log.warning(
            "engine process %d did not stop within %.1f s of a cancel; killing it",
            child.pid,
            self.config.cancel_grace_s,
        )
        child.process.kill()
        self._replace(child, "killed after a cancel")

    def _error(self, child: _Child, failed: Failed) -> Exception:
        if failed.failure is Failure.OUT_OF_MEMORY:
            log.warning("engine process %d ran out of GPU memory\n%s", child.pid, failed.details)
            return GenerationFailed(OUT_OF_MEMORY_MESSAGE)
        if failed.failure is Failure.GENERATION:
            return GenerationFailed(failed.message)
        log.error("engine process %d: job failed\n%s", child.pid, failed.details)
        return EngineError(failed.message)

    def _crashed(self, child: _Child) -> NoReturn:
        """Raise EngineCrashed after starting a replacement for ``child``."""
        how = self._replace(child, "died during a job")
        raise EngineCrashed(f"The engine process exited unexpectedly ({how}).")

    # -- the process ----------------------------------------------------------------------

    def _ready_child(self) -> _Child:
        """The engine process, started or replaced if needed, once it has said Ready."""
        if self._closed:
            raise RuntimeError("the engine supervisor is closed")
        child = self._child
        if child is not None and child.ready is None and not child.process.is_alive():
            child = None  # died before it was ready; a load failure was already reported
        if child is None or (child.ready is not None and not child.process.is_alive()):
            if child is not None:
                log.warning(
                    "engine process %d exited between jobs (%s); starting a new one",
                    child.pid,
                    _exit_description(child.process),
                )
            child = self._child = self._spawn()
        if child.ready is None:
            child.ready = self._await_ready(child)
        return child

    def _spawn(self) -> _Child:
        ours, theirs = self._context.Pipe(duplex=True)
        config = ChildConfig(
            log_level=logging.getLogger().getEffectiveLevel(),
            min_free_fraction=self.config.min_free_fraction,
        )
        process = self._context.Process(
            target=serve, args=(theirs, self.factory, config), name="reelserve-engine"
        )
        process.start()
        theirs.close()
        log.info("engine process %d started (%s)", process.pid, self.factory.target)
        return _Child(process, ours)

    def _await_ready(self, child: _Child) -> Ready:
        while True:
            try:
                message = self._receive(child, None)
            except _ChildGone:
                child.process.join(5)
                self._child = None
                raise EngineStartFailed(
                    f"the engine process {child.pid} exited while opening its engines "
                    f"({_exit_description(child.process)})"
                ) from None
            if isinstance(message, Ready):
                return message
            if isinstance(message, LoadFailed):
                child.process.join(5)
                self._child = None
                # The child logged the full traceback; this says what failed.
                raise EngineStartFailed(
                    f"the engine process could not open its engines ({self.factory.target}): "
                    f"{message.message}"
                )

    def _replace(self, child: _Child, why: str) -> str:
        """Reap ``child`` and start its replacement (which gets ready in the background)."""
        child.process.join(5)
        how = _exit_description(child.process)
        child.conn.close()
        log.error("engine process %d %s (%s); starting a new one", child.pid, why, how)
        self._child = None if self._closed else self._spawn()
        return how

    @staticmethod
    def _receive(child: _Child, timeout_s: float | None) -> FromEngine | None:
        """The next message, None after ``timeout_s``; raises _ChildGone when it died."""
        ready = wait([child.conn, child.process.sentinel], timeout_s)
        if not ready:
            return None
        # Read what it sent before it exited first.
        if child.conn.poll():
            try:
                message: FromEngine = child.conn.recv()
            except (EOFError, OSError):
                raise _ChildGone() from None
            return message
        raise _ChildGone()


class ChildEngine:
    """Stands in for one engine of the engine process; renders through the supervisor."""

    def __init__(self, supervisor: EngineSupervisor, name: str, random_weights: bool) -> None:
        self.supervisor = supervisor
        self.name = name
        self.random_weights = random_weights

    def render(self, job: RenderJob, progress: ProgressFn) -> Rendition:
        return self.supervisor.render(job, progress)


def start_engine_process(
    factory: EngineFactory, config: EngineProcessConfig
) -> tuple[EngineSupervisor, Mapping[Mode, Engine]]:
    """A started supervisor and its stand-in engines; raises EngineStartFailed."""
    supervisor = EngineSupervisor(factory, config)
    supervisor.start()
    return supervisor, supervisor.engines()


def _exit_description(process: BaseProcess) -> str:
    code = process.exitcode
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"
