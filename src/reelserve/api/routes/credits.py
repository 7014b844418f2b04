"""The workspace's credit balance (ours)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from reelserve.api.context import context
from reelserve.core.records import iso

router = APIRouter()


@router.get("/credits", summary="Credit balance of the caller's workspace")
def credits(request: Request) -> dict[str, Any]:
    ctx = context(request)
    workspace = ctx.workspace(request)
    balances = ctx.store.balances(workspace.id)
    return {
        "workspace": workspace.name,
        "subscription": balances.subscription,
        "permanent": balances.permanent,
        "total": balances.total,
        "subscription_period_end": iso(balances.subscription_period_end),
    }
