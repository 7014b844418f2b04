"""The services report to the Prometheus adapter: the reaper's timeouts and the
coordinator's claims, on a real store (SQLite), read back from the exposition."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from reelserve.core.ids import new_generation_id
from reelserve.core.ports import NewGeneration
from reelserve.core.pricing import PriceTable
from reelserve.core.status import Status
from reelserve.observability.prometheus import PrometheusMetrics
from reelserve.services.reaper import reap_once
from reelserve.services.work import LocalCoordinator, WorkPolicy
from reelserve.store import SqlStore
from tests.conftest import funded

MODEL = "kling-ai/kling-v2.6"


def values(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition()[0].decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_reaped_timeouts_count_as_failures_and_release_their_reserve(
    sqlite_store: SqlStore,
) -> None:
    metrics = PrometheusMetrics(sqlite_store.active_counts, [MODEL])
    workspace = funded(sqlite_store, permanent=100)
    sqlite_store.submit(
        NewGeneration(
            id=new_generation_id(),
            workspace_id=workspace.id,
            model=MODEL,
            mode="text-to-video",
            input={},
            plan={},
            price=20,
            max_attempts=1,
            deadline_s=3600.0,
        ),
        None,
    )
    coordinator = LocalCoordinator(
        sqlite_store, WorkPolicy(lease_s=-1.0, retry_backoff_s=0.0, prices=PriceTable()), metrics
    )
    coordinator.register("wrk_1", "gpu0", [MODEL], {"profile": "tiny"})
    claimed = coordinator.claim("wrk_1", [MODEL])  # its lease has already expired
    assert claimed is not None
    before = values(metrics)
    assert before[("reelserve_tasks_running", (("model", MODEL),))] == 1
    assert before[("reelserve_claim_wait_seconds_count", (("model", MODEL),))] == 1

    report = reap_once(sqlite_store, 0.0, metrics)
    assert [gen.status for gen in report.ended] == [Status.FAILED]
    after = values(metrics)
    assert after[("reelserve_task_failures_total", (("code", "VIDEO_GENERATION_TIMEOUT"),))] == 1
    assert after[("reelserve_credits_released_total", ())] == 20
    assert after[("reelserve_credits_captured_total", ())] == 0
    assert after[("reelserve_tasks_running", (("model", MODEL),))] == 0
