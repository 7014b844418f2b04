"""The engine process: real spawned children running the tiny LTX-2 engine.

One engine process serves the whole module (each spawn imports torch); the scenarios that
replace it (kill after a cancel, SIGKILL) check that the replacement serves the next job.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from reelserve.core.errors import GenerationFailed, JobCanceled, LeaseLost, ReelserveError
from reelserve.core.render import Engine, Mode, ProgressFn, Rendition
from reelserve.engines.progress import PREPARE_SHARE
from reelserve.worker.messages import EngineFactory
from reelserve.worker.supervisor import (
    OUT_OF_MEMORY_MESSAGE,
    CancelOutcome,
    EngineCrashed,
    EngineProcessConfig,
    EngineStartFailed,
    EngineSupervisor,
)
from tests.engines.engine_testkit import ProgressLog, assert_well_formed_progress, make_job
from tests.worker.engine_factories import tiny_ltx2_engine

pytestmark = pytest.mark.slow

GRACE_S = 5.0


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine-scratch")


@pytest.fixture(scope="module")
def supervisor(models_dir: Path, scratch: Path) -> Iterator[EngineSupervisor]:
    factory = EngineFactory(
        "tests.worker.engine_factories:scripted_tiny_ltx2",
        {"models_dir": models_dir, "warm_marker": scratch / "warmed"},
    )
    config = EngineProcessConfig(
        scratch_dir=scratch / "jobs", cancel_grace_s=GRACE_S, check_interval_s=0.2
    )
    supervisor = EngineSupervisor(factory, config)
    supervisor.start()
    yield supervisor
    supervisor.close()


@pytest.fixture(scope="module")
def engine(supervisor: EngineSupervisor) -> Engine:
    return supervisor.engines()[Mode.TEXT]


def render_text(engine: Engine, progress: ProgressFn, prompt: str = "a cat") -> Rendition:
    return engine.render(make_job(Mode.TEXT, prompt=prompt), progress)


def raise_once_denoising(error: Callable[[], ReelserveError]) -> Callable[[float], None]:
    """A progress function that raises ``error`` at the first report past the prompt stage,
    as the job tracker does once a cancel or a lost lease is seen."""

    def progress(fraction: float) -> None:
        if fraction > PREPARE_SHARE:
            raise error()

    return progress


def assert_serves_next_job(engine: Engine) -> None:
    progress = ProgressLog()
    result = render_text(engine, progress)
    assert result.frames.shape == (17, 36, 64, 3)
    assert_well_formed_progress(progress.values)


def test_start_warms_up_the_engines_and_reports_them(
    supervisor: EngineSupervisor, scratch: Path
) -> None:
    assert (scratch / "warmed").read_text() == "warm"
    assert supervisor.pid is not None
    assert supervisor.pid != os.getpid()
    engines = supervisor.engines()
    assert set(engines) == {Mode.TEXT}
    assert engines[Mode.TEXT].name == "tiny/ltx2"
    assert engines[Mode.TEXT].random_weights is True


def test_render_in_the_child_matches_inline(engine: Engine, models_dir: Path) -> None:
    job = make_job(Mode.TEXT, seed=11)
    progress = ProgressLog()

    in_child = engine.render(job, progress)
    inline = tiny_ltx2_engine(models_dir).render(job, ProgressLog())

    assert_well_formed_progress(progress.values)
    assert in_child.frames.std() > 0
    np.testing.assert_array_equal(in_child.frames, inline.frames)
    assert in_child.audio is not None
    assert inline.audio is not None
    np.testing.assert_array_equal(in_child.audio, inline.audio)
    assert (in_child.fps, in_child.sample_rate) == (inline.fps, inline.sample_rate)


def test_a_lost_lease_stops_the_child_at_its_next_step(
    supervisor: EngineSupervisor, engine: Engine
) -> None:
    # JobCanceled takes the same path; the next test sends one.
    pid = supervisor.pid

    with pytest.raises(LeaseLost):
        render_text(engine, raise_once_denoising(LeaseLost), prompt="slow cat")

    # STOPPED: the child answered "canceled" within the grace period (else: KILLED).
    assert supervisor.last_cancel is CancelOutcome.STOPPED
    assert supervisor.pid == pid, "a cooperative stop keeps the engine process"
    assert_serves_next_job(engine)


def test_a_child_that_ignores_cancel_is_killed_and_replaced(
    supervisor: EngineSupervisor, engine: Engine
) -> None:
    pid = supervisor.pid
    assert pid is not None

    with pytest.raises(JobCanceled):
        render_text(engine, raise_once_denoising(JobCanceled), prompt="deaf cat")

    assert supervisor.last_cancel is CancelOutcome.KILLED
    assert not _alive(pid)
    assert supervisor.pid not in (None, pid)
    assert_serves_next_job(engine)


def test_a_child_killed_mid_render_raises_engine_crashed_and_is_replaced(
    supervisor: EngineSupervisor, engine: Engine
) -> None:
    pid = supervisor.pid
    assert pid is not None

    def kill_the_child(fraction: float) -> None:
        if fraction > PREPARE_SHARE:
            os.kill(pid, signal.SIGKILL)

    with pytest.raises(EngineCrashed, match="signal 9"):
        render_text(engine, kill_the_child, prompt="slow cat")

    assert supervisor.pid not in (None, pid)
    assert_serves_next_job(engine)


def test_out_of_memory_fails_the_job_and_keeps_the_child(
    supervisor: EngineSupervisor, engine: Engine
) -> None:
    # The tiny denoiser raises torch.OutOfMemoryError: a stand-in for a GPU (none here).
    pid = supervisor.pid

    with pytest.raises(GenerationFailed) as failure:
        render_text(engine, ProgressLog(), prompt="oom cat")

    assert failure.value.message == OUT_OF_MEMORY_MESSAGE
    assert supervisor.pid == pid
    assert _alive(pid)
    assert_serves_next_job(engine)


def test_job_files_are_removed_after_each_job(supervisor: EngineSupervisor) -> None:
    jobs = supervisor.config.scratch_dir
    assert jobs.is_dir()
    assert list(jobs.iterdir()) == []


def test_a_child_that_cannot_open_its_engines_fails_the_start(tmp_path: Path) -> None:
    factory = EngineFactory(
        "reelserve.engines:open_engines", {"profile_name": "no-such", "models_dir": tmp_path}
    )
    supervisor = EngineSupervisor(factory, EngineProcessConfig(scratch_dir=tmp_path))

    with pytest.raises(EngineStartFailed, match="profile no-such: unknown engine profile"):
        supervisor.start()

    supervisor.close()
    assert supervisor.pid is None


def _alive(pid: int | None) -> bool:
    assert pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
