"""``create_app``: the API's composition root. The only place that wires adapters in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from reelserve import __version__
from reelserve.api import errors, openapi, playground
from reelserve.api.context import API_PREFIX, ApiContext
from reelserve.api.http_metrics import HttpMetricsMiddleware
from reelserve.api.request_id import RequestIdMiddleware
from reelserve.api.routes import credits, files, generations, health, internal, metrics
from reelserve.blobs import FileLinks, UrlSigning, open_blobs
from reelserve.core.capabilities import LiveWorker, unserved_reason
from reelserve.core.spec import MediaLimits
from reelserve.models.registry import REGISTRY
from reelserve.observability.prometheus import PrometheusMetrics, from_environment
from reelserve.services.submit import SubmitPolicy, Submitter
from reelserve.services.work import LocalCoordinator, WorkPolicy
from reelserve.settings import Settings
from reelserve.store import SqlStore, SqlWorkerTokens, current_revision, head_revision


def inspect_upload(
    path: Path, field: str, limits: MediaLimits, orientation: str
) -> tuple[str, float | None]:
    """Decode an uploaded file to learn what it really is (never trust names or types)."""
    from reelserve.media import probe_image, probe_video

    if field == "video_url":
        video = probe_video(
            path,
            field=field,
            max_bytes=limits.video_max_bytes,
            min_seconds=limits.video_min_seconds,
            max_seconds=limits.video_max_seconds(orientation),
        )
        return (
            "mov" if "mov" in video.container and "mp4" not in video.container else "mp4",
            video.duration,
        )
    image = probe_image(path, field=field, max_bytes=limits.image_max_bytes)
    return {"jpeg": "jpg"}.get(image.format, image.format), None


def unserved_models(workers: list[LiveWorker]) -> dict[str, str]:
    """Each model no live worker serves, with why (as the workers said) where known."""
    served = {model for worker in workers for model in worker.models}
    return {
        route: unserved_reason(route, spec.modes, workers) or "no worker serves it"
        for route, spec in sorted(REGISTRY.items())
        if route not in served
    }


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def create_app(
    settings: Settings,
    *,
    store: SqlStore | None = None,
    require_worker: bool = True,
    prometheus: PrometheusMetrics | None = None,
) -> FastAPI:
    """The app; pass ``prometheus`` to share one set of metrics with the process's worker
    and reaper (``reelserve serve``), else the app makes its own."""
    from reelserve.media import check_url
    from reelserve.store import connect

    store = store or SqlStore(connect(settings.db_url))
    blobs = open_blobs(settings)
    signing = UrlSigning(settings.signing_secret(), settings.file_url_ttl_s)
    links = FileLinks(blobs, signing)
    prometheus = prometheus or from_environment(store.active_counts, REGISTRY, os.environ)

    def url_check(url: str, field: str) -> None:
        check_url(url, field=field, allow_private=settings.allow_private_urls)

    submitter = Submitter(
        store,
        SubmitPolicy(
            prices=settings.price_table,
            max_attempts=settings.max_attempts,
            deadline_s=settings.deadline_s,
            idempotency_ttl_s=settings.idempotency_ttl_s,
            worker_fresh_s=settings.worker_fresh_s,
            require_worker=require_worker,
            creates_per_minute=settings.creates_per_minute or None,
            max_active_per_key=settings.max_active_per_key or None,
        ),
        url_check,
        prometheus,
    )

    def readiness() -> dict[str, Any]:
        report: dict[str, Any] = {"status": "ready", "version": __version__}
        try:
            store.ping()
            report["database"] = "ok"
            current, head = current_revision(store.engine), head_revision()
            report["migrations"] = "current" if current == head else f"at {current}, need {head}"
            if current != head:
                report["status"] = "not ready"
        except Exception as exc:  # the point of readiness is to report, not to raise
            report.update(status="not ready", database=f"unreachable ({type(exc).__name__})")
            return report
        served = store.served_models(settings.worker_fresh_s)
        report["models"] = {model: info for model, info in sorted(served.items())}
        report["unserved"] = unserved_models(store.live_workers(settings.worker_fresh_s))
        report["profile"] = settings.profile
        random = sorted(
            {str(info.get("profile")) for info in served.values() if info.get("random_weights")}
        )
        if random:
            names = ", ".join(repr(name) for name in random)
            report["warning"] = (
                f"profile {names} runs random weights: its videos are noise, for tests only"
            )
        return report

    ctx = ApiContext(
        store=store,
        wait_for_change=store.wakeups.wait_async,
        submitter=submitter,
        sign_url=links.sign,
        verify_url=signing.verify,
        file_path=blobs.local_path,
        store_upload=blobs.put_file,
        delete_blob=blobs.delete,
        inspect_upload=inspect_upload,
        readiness=readiness,
        tmp_dir=_made(settings.data_dir / "tmp"),
        public_url=settings.public_url,
        metrics=prometheus,
        expose_metrics=prometheus.exposition,
    )
    app = FastAPI(
        title="reelserve",
        version=__version__,
        description="Video generation with the skills.video open platform's API.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.reelserve = ctx
    app.add_middleware(HttpMetricsMiddleware, metrics=prometheus)
    app.add_middleware(RequestIdMiddleware)
    errors.install(app)
    for module in (generations, credits, files, health, metrics):
        app.include_router(module.router, prefix=API_PREFIX)
    # Probes and metrics at the root too, where orchestrators and Prometheus look for them.
    app.include_router(health.router)
    app.include_router(metrics.router)
    # Remote workers: /internal/v1, worker tokens only, not in the public schema.
    work_policy = WorkPolicy(
        settings.lease_s,
        settings.retry_backoff_s,
        settings.price_table,
        max_running_per_workspace=settings.max_running_per_workspace,
    )
    internal.install(
        app,
        internal.WorkerApi(
            SqlWorkerTokens(store.engine),
            LocalCoordinator(store, work_policy, prometheus),
            blobs,
            ctx.tmp_dir,
        ),
    )
    # The web playground: its page at `/`, its two assets under `/playground/`.
    app.include_router(playground.router)
    openapi.install(app)
    return app
