"""Create a generation: normalise, price, reserve and enqueue in one store transaction."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from reelserve.core import log_context
from reelserve.core.capabilities import audio_refusal, unserved_reason
from reelserve.core.errors import InvalidInput, ProviderUnavailable, RateLimited
from reelserve.core.ids import new_generation_id
from reelserve.core.metrics import NO_METRICS, Metrics
from reelserve.core.ports import Caller, IdempotencyClaim, NewGeneration, Store
from reelserve.core.pricing import PriceTable
from reelserve.core.records import Generation
from reelserve.core.spec import (
    BLOB_REF_PREFIX,
    MEDIA_FIELDS,
    UploadedMedia,
    plan_from_dict,
    plan_to_dict,
)
from reelserve.models.registry import lookup

log = logging.getLogger(__name__)

# (url, field) → None, or raises InvalidInput: the create-time URL rule (no DNS).
UrlCheck = Callable[[str, str], None]


@dataclass(frozen=True)
class SubmitPolicy:
    prices: PriceTable
    max_attempts: int
    deadline_s: float
    idempotency_ttl_s: float
    worker_fresh_s: float
    require_worker: bool = True
    # Per API key: creates per minute, and tasks queued or running at once (None: no cap).
    creates_per_minute: int | None = None
    max_active_per_key: int | None = None


def request_hash(route: str, body: Mapping[str, Any], file_digests: Mapping[str, str]) -> str:
    canonical = json.dumps(
        {"route": route, "body": body, "files": dict(file_digests)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class Submitter:
    def __init__(
        self,
        store: Store,
        policy: SubmitPolicy,
        check_url: UrlCheck,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.store = store
        self.policy = policy
        self.check_url = check_url
        self.metrics = metrics

    def prepare(
        self,
        route: str,
        body: Mapping[str, Any],
        uploads: Mapping[str, UploadedMedia],
    ) -> NewGeneration:
        """Everything up to the transaction; raises the 4xx errors before anything is stored."""
        spec = lookup(route)
        normalized = spec.normalize(body, uploads, spec.limits)
        for name in MEDIA_FIELDS:
            value = normalized.plan.media.get(name)
            if value is not None and not value.startswith(BLOB_REF_PREFIX):
                self.check_url(value, name)
        webhook = normalized.input.get("webhook_url")
        if isinstance(webhook, str):
            self.check_url(webhook, "webhook_url")
        return NewGeneration(
            id=new_generation_id(),
            workspace_id="",
            model=spec.route,
            mode=normalized.plan.mode.value,
            input=normalized.input,
            plan=plan_to_dict(normalized.plan),
            price=spec.price(normalized.plan, self.policy.prices),
            max_attempts=self.policy.max_attempts,
            deadline_s=self.policy.deadline_s,
        )

    def _check_workers(self, route: str, new: NewGeneration) -> None:
        """503 when no live worker serves ``route`` (saying why when workers said), and 400
        when ``generate_audio`` asks for a sound the serving workers' profile cannot make.
        Decided from the workers' registrations: no model is loaded here."""
        workers = self.store.live_workers(self.policy.worker_fresh_s)
        serving = [worker for worker in workers if route in worker.models]
        if self.policy.require_worker and not serving:
            why = unserved_reason(route, lookup(route).modes, workers)
            raise ProviderUnavailable(
                f"model: no worker is serving {route!r} right now"
                + (f" ({why})" if why else "")
                + "; try again later",
                field="model",
            )
        plan = plan_from_dict(new.plan)
        problem = audio_refusal(plan.mode, plan.quality, plan.generate_audio, serving)
        if problem is not None:
            raise InvalidInput(problem, field="generate_audio")

    def submit(
        self,
        caller: Caller,
        route: str,
        body: Mapping[str, Any],
        uploads: Mapping[str, UploadedMedia] | None = None,
        *,
        idempotency_key: str | None = None,
        file_digests: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> tuple[Generation, bool]:
        """The new task (or the earlier one for a repeated idempotency key) and whether it
        was created now. ``request_id`` is stored with it for the worker's logs."""
        uploads = uploads or {}
        if self.policy.creates_per_minute is not None:
            wait = self.store.admit(caller.key_id, 60.0, self.policy.creates_per_minute)
            if wait is not None:
                raise RateLimited(
                    f"this API key may create {self.policy.creates_per_minute} generations "
                    f"a minute; retry in {math.ceil(wait)} s",
                    retry_after_s=wait,
                )
        new = self.prepare(route, body, uploads)
        self._check_workers(route, new)
        new = replace(
            new,
            workspace_id=caller.workspace.id,
            api_key_id=caller.key_id,
            max_active_per_key=self.policy.max_active_per_key,
            request_id=request_id,
        )
        claim = None
        if idempotency_key is not None:
            claim = IdempotencyClaim(
                key=idempotency_key,
                request_hash=request_hash(route, body, file_digests or {}),
                ttl_s=self.policy.idempotency_ttl_s,
            )
        gen, fresh = self.store.submit(new, claim)
        with log_context.bound(generation=gen.id):
            if fresh:
                self.metrics.task_submitted(gen)
                log.info("generation created: %s %s, %d credits", gen.model, gen.mode, gen.price)
            else:
                log.info("generation repeated by its Idempotency-Key")
        return gen, fresh
