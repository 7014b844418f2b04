"""The worker's side of the store: claim, heartbeat, complete, fail, all fenced by attempt.

In the embedded default the worker calls this in-process; a remote worker reaches the
same calls through the API's internal routes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from reelserve.core.metrics import NO_METRICS, Metrics
from reelserve.core.ports import Heartbeat, Store
from reelserve.core.pricing import PriceTable
from reelserve.core.records import Generation
from reelserve.core.spec import plan_from_dict
from reelserve.models.registry import lookup


@dataclass(frozen=True)
class WorkPolicy:
    lease_s: float
    retry_backoff_s: float
    prices: PriceTable
    # Tasks of one workspace running at once, for workspaces without their own cap (0: none).
    max_running_per_workspace: int = 0


class LocalCoordinator:
    """Also reports to ``metrics``: behind the API's worker routes too, so remote workers'
    tasks are counted by the API that they report to."""

    def __init__(self, store: Store, policy: WorkPolicy, metrics: Metrics = NO_METRICS) -> None:
        self.store = store
        self.policy = policy
        self.metrics = metrics
        self._profiles: dict[str, str | None] = {}

    def register(self, worker_id: str, name: str, models: list[str], info: dict[str, Any]) -> None:
        self.store.register_worker(worker_id, name, models, info)
        self._profiles[worker_id] = _profile(info)

    def _profile(self, worker_id: str) -> str | None:
        """The engine profile of a worker (registered here, or through another replica)."""
        if worker_id not in self._profiles:
            self._profiles[worker_id] = _profile(self.store.worker_info(worker_id))
        return self._profiles[worker_id]

    def _ended(self, gen: Generation, worker_id: str) -> Generation:
        if gen.status.terminal:
            self.metrics.task_ended(gen, self._profile(worker_id))
        return gen

    def touch(self, worker_id: str) -> None:
        self.store.touch_worker(worker_id)

    def unregister(self, worker_id: str) -> None:
        self.store.remove_worker(worker_id)

    def claim(self, worker_id: str, models: list[str]) -> Generation | None:
        gen = self.store.claim(
            worker_id,
            models,
            self.policy.lease_s,
            default_max_running=self.policy.max_running_per_workspace,
        )
        if gen is not None:
            self.metrics.task_claimed(gen)
        return gen

    def heartbeat(self, gen: Generation, worker_id: str, progress: int) -> Heartbeat:
        return self.store.heartbeat(gen.id, gen.attempt, worker_id, progress, self.policy.lease_s)

    def charge(self, gen: Generation, actual_seconds: float | None) -> int:
        """The final price: the reserve, or less when the real length is known only now."""
        if actual_seconds is None:
            return gen.price
        plan = replace(plan_from_dict(gen.plan), seconds=actual_seconds, seconds_known=True)
        return min(gen.price, lookup(gen.model).price(plan, self.policy.prices))

    def complete(
        self,
        gen: Generation,
        worker_id: str,
        data: dict[str, Any],
        actual_seconds: float | None = None,
    ) -> Generation:
        charge = self.charge(gen, actual_seconds)
        done = self.store.complete(gen.id, gen.attempt, worker_id, data, charge)
        return self._ended(done, worker_id)

    def fail(
        self, gen: Generation, worker_id: str, code: str, message: str, *, retry: bool = False
    ) -> Generation:
        retry_in = self.policy.retry_backoff_s * 2 ** max(gen.attempt - 1, 0) if retry else None
        done = self.store.fail(gen.id, gen.attempt, worker_id, code, message, retry_in)
        return self._ended(done, worker_id)

    def canceled(self, gen: Generation, worker_id: str) -> Generation:
        done = self.store.finish_canceled(gen.id, gen.attempt, worker_id)
        return self._ended(done, worker_id)


def _profile(info: dict[str, Any] | None) -> str | None:
    profile = (info or {}).get("profile")
    return str(profile) if profile is not None else None
