"""The worker loop: claim → prepare → render → encode → store → complete.

At-least-once execution, exactly-once effects: every finishing call is fenced by the
attempt, so a worker whose lease expired (and whose task another worker took) gets
``LeaseLost`` and throws its output away instead of finishing twice.
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from reelserve.core import log_context
from reelserve.core.capabilities import LiveWorker, audio_policy, audio_refusal, missing_modes
from reelserve.core.errors import (
    ErrorCode,
    GenerationFailed,
    InvalidInput,
    JobCanceled,
    LeaseLost,
)
from reelserve.core.ids import new_worker_id
from reelserve.core.ports import Heartbeat
from reelserve.core.progress import Stage
from reelserve.core.records import Generation
from reelserve.core.render import Audio, Engine, Mode, RenderJob, Rendition, describe
from reelserve.core.spec import Plan, frames_for, plan_from_dict
from reelserve.core.wakeups import QUEUE, Wakeups
from reelserve.media import write_mp4
from reelserve.models.registry import REGISTRY
from reelserve.worker.inputs import BlobReader, FetchPolicy, Inputs, prepare_inputs
from reelserve.worker.tracker import JobTracker

log = logging.getLogger(__name__)

SILENT_TRACK_RATE = 48_000

SAFE_FAILURE = "The generation failed; no credits were charged."


class Coordinator(Protocol):
    def register(
        self, worker_id: str, name: str, models: list[str], info: dict[str, Any]
    ) -> None: ...
    def touch(self, worker_id: str) -> None: ...
    def unregister(self, worker_id: str) -> None: ...
    def claim(self, worker_id: str, models: list[str]) -> Generation | None: ...
    def heartbeat(self, gen: Generation, worker_id: str, progress: int) -> Heartbeat: ...
    def complete(
        self,
        gen: Generation,
        worker_id: str,
        data: dict[str, Any],
        actual_seconds: float | None = None,
    ) -> Generation: ...
    def fail(
        self, gen: Generation, worker_id: str, code: str, message: str, *, retry: bool = False
    ) -> Generation: ...
    def canceled(self, gen: Generation, worker_id: str) -> Generation: ...


@dataclass(frozen=True)
class OutputStore:
    save: Callable[[str, Path], None]  # (key, local file) → stored
    delete: Callable[[str], None]
    read: BlobReader


@dataclass(frozen=True)
class WorkerConfig:
    lease_s: float
    poll_s: float
    fetch: FetchPolicy
    profile: str
    random_weights: bool
    scratch_dir: Path
    # Registration extras (core.capabilities): per-mode audio policy, missing modes.
    capabilities: Mapping[str, Any] = field(default_factory=dict)


class Worker:
    def __init__(
        self,
        coordinator: Coordinator,
        engines: Mapping[Mode, Engine],
        outputs: OutputStore,
        config: WorkerConfig,
        *,
        wakeups: Wakeups | None = None,
        name: str | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.engines = engines
        self.outputs = outputs
        self.config = config
        # Published by the store when work is queued (and by ``stop`` callers).
        self.wakeups = wakeups or Wakeups()
        self.id = new_worker_id()
        self.name = name or f"{socket.gethostname()}/{self.id[-6:]}"
        # A route is served only when every one of its modes has an engine here.
        self.models = [route for route, spec in REGISTRY.items() if spec.modes <= set(engines)]

    @property
    def info(self) -> dict[str, Any]:
        """What the worker registers besides its models (see core.capabilities)."""
        return {
            "profile": self.config.profile,
            "random_weights": self.config.random_weights,
            **self.config.capabilities,
        }

    # -- loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.coordinator.register(self.id, self.name, self.models, self.info)
        if self.config.random_weights:
            log.warning(
                "worker %s: profile %r has random weights; its videos are noise (tests only)",
                self.name,
                self.config.profile,
            )
        log.info("worker %s serving %s", self.name, ", ".join(self.models) or "no model")
        for mode, reason in missing_modes(self.info).items():
            log.warning("worker %s: %s not served: %s", self.name, mode, reason)
        try:
            while not stop.is_set():
                if not self.run_once():
                    self.wakeups.wait(QUEUE, self.config.poll_s)
                    self._touch()
        finally:
            try:
                self.coordinator.unregister(self.id)
            except Exception:
                log.warning("could not unregister worker %s", self.name, exc_info=True)

    def _touch(self) -> None:
        try:
            self.coordinator.touch(self.id)
        except Exception:
            log.warning("worker %s: presence update failed", self.name, exc_info=True)

    def run_once(self) -> bool:
        """Claim and process one task; False when the queue had nothing for us."""
        try:
            gen = self.coordinator.claim(self.id, self.models)
        except Exception:
            log.warning("claim failed; retrying after a pause", exc_info=True)
            return False
        if gen is None:
            return False
        self.process(gen)
        return True

    # -- one task -------------------------------------------------------------------------

    def process(self, gen: Generation) -> None:
        # Every line logged for this task carries its ids (the request's, from the create).
        with log_context.bound(request=gen.request_id, generation=gen.id):
            self._process(gen)

    def _process(self, gen: Generation) -> None:
        plan = plan_from_dict(gen.plan)
        log.info("task %s attempt %d: %s", gen.id, gen.attempt, plan.mode.value)
        workdir = Path(tempfile.mkdtemp(prefix=f"{gen.id}-", dir=self._scratch()))
        output_key: str | None = None
        completing = False
        try:
            with JobTracker(
                lambda percent: self.coordinator.heartbeat(gen, self.id, percent),
                self.config.lease_s,
            ) as tracker:
                self._check_audio(plan)
                inputs = prepare_inputs(
                    plan,
                    REGISTRY[gen.model].limits,
                    workdir,
                    self.outputs.read,
                    self.config.fetch,
                    tracker.stage_progress(Stage.PREPARE),
                )
                tracker.check()
                job = self._job(plan, inputs)
                log.info("task %s render %s", gen.id, describe(job))
                rendition = self.engines[plan.mode].render(
                    job, tracker.stage_progress(Stage.RENDER)
                )
                tracker.report(Stage.ENCODE, 0.0)
                audio, rate = self._soundtrack(plan, rendition, inputs)
                local = workdir / f"{gen.id}.mp4"
                info = write_mp4(
                    local,
                    rendition.frames,
                    audio,
                    rate,
                    width=job.width,
                    height=job.height,
                    num_frames=job.num_frames,
                    fps=job.fps,
                )
                tracker.report(Stage.STORE, 0.0)
                output_key = f"outputs/{gen.workspace_id}/{gen.id}-{gen.attempt}.mp4"
                self.outputs.save(output_key, local)
                tracker.check()
                data = _data(gen, plan, output_key, info)
            completing = True
            self.coordinator.complete(gen, self.id, data, inputs.reference_seconds)
            log.info("task %s completed", gen.id)
            output_key = None  # kept: it belongs to the completed task now
        except JobCanceled:
            self._settle(gen, "canceled", lambda: self.coordinator.canceled(gen, self.id))
        except LeaseLost:
            log.warning("task %s: lease lost; dropping this attempt", gen.id)
        except InvalidInput as exc:
            self._fail(gen, ErrorCode.INVALID_INPUT, exc.message)
        except GenerationFailed as exc:
            self._fail(gen, ErrorCode.FAILED, exc.message)
        except Exception:
            log.exception("task %s: unexpected error", gen.id)
            if completing:
                # The store may have committed the completion before the error reached us
                # (a connection lost at COMMIT): keep the output it may now refer to.
                output_key = None
            # Unknown errors may be transient (a full disk, a lost connection): retry.
            self._fail(gen, ErrorCode.FAILED, SAFE_FAILURE, retry=True)
        finally:
            if output_key is not None:
                # Outputs of FAILED/CANCELED or superseded attempts are not kept.
                self.outputs.delete(output_key)
            shutil.rmtree(workdir, ignore_errors=True)

    def _fail(self, gen: Generation, code: ErrorCode, message: str, *, retry: bool = False) -> None:
        self._settle(
            gen,
            f"failed ({code.value})",
            lambda: self.coordinator.fail(gen, self.id, code.value, message, retry=retry),
        )

    def _settle(self, gen: Generation, what: str, action: Callable[[], Generation]) -> None:
        try:
            action()
            log.info("task %s %s", gen.id, what)
        except LeaseLost:
            log.warning("task %s: lease lost before it could be marked %s", gen.id, what)
        except Exception:
            # The coordinator is out of reach (a database restart, the API down): the worker
            # lives on, and the task, still leased to this attempt, goes back to the queue
            # when the lease expires (the reaper), so it is neither lost nor finished twice.
            log.exception(
                "task %s: could not be marked %s; the reaper will requeue it", gen.id, what
            )

    def _soundtrack(
        self, plan: Plan, rendition: Rendition, inputs: Inputs
    ) -> tuple[Audio, int] | tuple[None, None]:
        """The track to write: the reference's for motion control, the model's, a silent
        one where the profile says so, or none."""
        if plan.mode is Mode.MOTION:
            return inputs.reference_audio or (None, None)
        if not plan.generate_audio:
            return None, None
        if rendition.audio is not None and rendition.sample_rate is not None:
            return rendition.audio, rendition.sample_rate
        if audio_policy(self.info, plan.mode, plan.quality) == "silent_track":
            # One sample of silence: the MP4 writer pads the track to the clip's length.
            return np.zeros((2, 1), dtype=np.float32), SILENT_TRACK_RATE
        return None, None

    def _check_audio(self, plan: Plan) -> None:
        """Refuse, before any work, a sound this worker's profile cannot make.

        The API refuses these at create; this covers a worker of another profile that
        registered the model since. Nothing is charged for INVALID_INPUT.
        """
        problem = audio_refusal(
            plan.mode,
            plan.quality,
            plan.generate_audio,
            [LiveWorker(self.name, self.models, self.info)],
        )
        if problem is not None:
            raise InvalidInput(problem, field="generate_audio")

    def _scratch(self) -> Path:
        self.config.scratch_dir.mkdir(parents=True, exist_ok=True)
        return self.config.scratch_dir

    @staticmethod
    def _job(plan: Plan, inputs: Inputs) -> RenderJob:
        seconds = inputs.reference_seconds if plan.mode is Mode.MOTION else plan.seconds
        assert seconds is not None
        return RenderJob(
            mode=plan.mode,
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            width=plan.width,
            height=plan.height,
            num_frames=frames_for(plan.mode, seconds, plan.fps),
            fps=plan.fps,
            generate_audio=plan.generate_audio,
            seed=plan.seed,
            quality=plan.quality,
            image=inputs.image,
            end_image=inputs.end_image,
            reference_frames=inputs.reference_frames,
            reference_fps=inputs.reference_fps,
            character_orientation=plan.character_orientation,
        )


def _data(gen: Generation, plan: Plan, key: str, info: Any) -> dict[str, Any]:
    video = {
        "key": key,
        "file_name": f"{gen.id}.mp4",
        "content_type": "video/mp4",
        "width": info.width,
        "height": info.height,
        "duration": info.duration,
        "fps": info.fps,
        "has_audio": info.has_audio,
    }
    return {"type": "video", "n": 1, "actual_prompt": plan.prompt, "videos": [video]}
