"""The worker's side of the store: claim, heartbeat, complete, fail, all fenced by attempt.

In the embedded default the worker calls this in-process; a remote worker reaches the
same calls through the API's internal routes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

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
    def __init__(self, store: Store, policy: WorkPolicy) -> None:
        self.store = store
        self.policy = policy

    def register(self, worker_id: str, name: str, models: list[str], info: dict[str, Any]) -> None:
        self.store.register_worker(worker_id, name, models, info)

    def touch(self, worker_id: str) -> None:
        self.store.touch_worker(worker_id)

    def unregister(self, worker_id: str) -> None:
        self.store.remove_worker(worker_id)

    def claim(self, worker_id: str, models: list[str]) -> Generation | None:
        return self.store.claim(
            worker_id,
            models,
            self.policy.lease_s,
            default_max_running=self.policy.max_running_per_workspace,
        )

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
        return self.store.complete(gen.id, gen.attempt, worker_id, data, charge)

    def fail(
        self, gen: Generation, worker_id: str, code: str, message: str, *, retry: bool = False
    ) -> Generation:
        retry_in = self.policy.retry_backoff_s * 2 ** max(gen.attempt - 1, 0) if retry else None
        return self.store.fail(gen.id, gen.attempt, worker_id, code, message, retry_in)

    def canceled(self, gen: Generation, worker_id: str) -> Generation:
        return self.store.finish_canceled(gen.id, gen.attempt, worker_id)
