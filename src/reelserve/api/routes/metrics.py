"""Prometheus metrics (ours). No API key, like the probes: keep it off the public internet
(serve it on an internal network or block ``/metrics`` at the proxy)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from reelserve.api.context import context

router = APIRouter()


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    # Scraping reads the queue gauges from the store: off the event loop.
    body, content_type = await run_in_threadpool(context(request).expose_metrics)
    return Response(body, media_type=content_type)
