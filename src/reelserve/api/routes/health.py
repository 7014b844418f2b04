"""Liveness and readiness (ours)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reelserve.api.context import context

router = APIRouter()


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable and migrations current")
def readyz(request: Request) -> JSONResponse:
    report = context(request).readiness()
    return JSONResponse(report, status_code=200 if report["status"] == "ready" else 503)
