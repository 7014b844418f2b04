"""Create (JSON or multipart, plain or SSE), read, follow, cancel, list."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from reelserve.api.context import ApiContext, context
from reelserve.api.multipart import read_form
from reelserve.api.sse import counted, parse_last_event_id, stream_events
from reelserve.core import log_context
from reelserve.core.errors import InputTooLarge, InvalidInput
from reelserve.core.ids import ulid
from reelserve.core.ports import Workspace
from reelserve.core.records import Generation, running_item, snapshot
from reelserve.core.spec import MEDIA_FIELDS, ModelSpec, UploadedMedia
from reelserve.models.registry import lookup
from reelserve.services import generations as service

router = APIRouter()

MAX_JSON_BYTES = 1_000_000
MAX_IDEMPOTENCY_KEY = 255
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass
class CreateRequest:
    body: dict[str, Any]
    uploads: dict[str, UploadedMedia] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)


async def _capped(chunks: AsyncIterator[bytes], cap: int) -> bytes:
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) > cap:
            raise InputTooLarge(f"body: JSON body is larger than {cap} bytes", field="body")
    return bytes(buffer)


async def _read_create(
    request: Request, ctx: ApiContext, spec: ModelSpec, workspace: Workspace
) -> CreateRequest:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _read_multipart(request, ctx, spec, workspace)
    raw = await _capped(request.stream(), MAX_JSON_BYTES)
    if not raw.strip():
        raise InvalidInput("body: a JSON object is required", field="body")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"body: malformed JSON ({exc.__class__.__name__})", field="body"
        ) from None
    if not isinstance(body, dict):
        raise InvalidInput("body: must be a JSON object", field="body")
    return CreateRequest(body=body)


async def _read_multipart(
    request: Request, ctx: ApiContext, spec: ModelSpec, workspace: Workspace
) -> CreateRequest:
    limits = spec.limits
    caps = {
        "image_url": limits.image_max_bytes,
        "end_image_url": limits.image_max_bytes,
        "video_url": limits.video_max_bytes,
    }
    form = await read_form(
        request.headers["content-type"], request.stream(), file_caps=caps, tmp_dir=ctx.tmp_dir
    )
    created = CreateRequest(body=dict(form.text))
    orientation = form.text.get("character_orientation", "video")
    try:
        for name in MEDIA_FIELDS:
            part = form.files.get(name)
            if part is None:
                continue
            ext, seconds = await run_in_threadpool(
                ctx.inspect_upload, part.path, name, limits, orientation
            )
            key = f"uploads/{workspace.id}/{ulid()}.{ext}"
            await run_in_threadpool(ctx.store_upload, key, part.path)
            kind = "video" if name == "video_url" else "image"
            created.uploads[name] = UploadedMedia(key=key, kind=kind, seconds=seconds)
            created.digests[name] = part.sha256
    except BaseException:
        _forget_uploads(ctx, created)
        raise
    finally:
        form.cleanup()
    return created


def _forget_uploads(ctx: ApiContext, created: CreateRequest) -> None:
    for upload in created.uploads.values():
        ctx.delete_blob(upload.key)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(
            f"Idempotency-Key: must be 1..{MAX_IDEMPOTENCY_KEY} characters",
            field="Idempotency-Key",
        )
    return key


async def _create(request: Request, route: str) -> Generation:
    ctx = context(request)
    caller = await run_in_threadpool(ctx.caller, request)
    spec = lookup(route)
    idempotency_key = _idempotency_key(request)
    created = await _read_create(request, ctx, spec, caller.workspace)
    try:
        gen, fresh = await run_in_threadpool(
            ctx.submitter.submit,
            caller,
            route,
            created.body,
            created.uploads,
            idempotency_key=idempotency_key,
            file_digests=created.digests,
            request_id=log_context.request_id(),
        )
    except BaseException:
        _forget_uploads(ctx, created)
        raise
    if not fresh:
        # A repeated idempotent request: the first task stands, these uploads are spare.
        _forget_uploads(ctx, created)
    return gen


def _event_stream(request: Request, ctx: ApiContext, generation_id: str) -> StreamingResponse:
    """The task's events from ``Last-Event-ID`` on (from the first, without one)."""
    after = parse_last_event_id(request.headers.get("last-event-id"))
    return StreamingResponse(
        counted(
            stream_events(
                ctx.store,
                generation_id,
                after,
                lambda snap: ctx.present(request, snap),
                ctx.wait_for_change,
            ),
            ctx.metrics,
        ),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


CREATE_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/KlingV26Input"}},
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/KlingV26Input"}},
        },
    },
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
        },
    ],
}


@router.post("/generation/{generation_id}/cancel", summary="Cancel a generation")
def cancel_generation(generation_id: str, request: Request) -> dict[str, Any]:
    ctx = context(request)
    gen = service.cancel(ctx.store, ctx.workspace(request), generation_id, ctx.metrics)
    return ctx.present(request, snapshot(gen))


@router.post(
    "/generation/sse/{route:path}",
    summary="Create a generation and follow it as Server-Sent Events",
    response_class=StreamingResponse,
    openapi_extra=CREATE_DOC,
)
async def create_generation_sse(route: str, request: Request) -> StreamingResponse:
    gen = await _create(request, route)
    ctx = context(request)
    return _event_stream(request, ctx, gen.id)


@router.post("/generation/{route:path}", summary="Create a generation", openapi_extra=CREATE_DOC)
async def create_generation(route: str, request: Request) -> JSONResponse:
    gen = await _create(request, route)
    return JSONResponse(context(request).present(request, snapshot(gen)))


@router.get("/generation/{generation_id}/events", summary="Follow a generation as SSE")
def follow_generation(generation_id: str, request: Request) -> StreamingResponse:
    ctx = context(request)
    gen = service.get_own(ctx.store, ctx.workspace(request), generation_id)
    return _event_stream(request, ctx, gen.id)


@router.get("/generation/{generation_id}", summary="Get a generation")
def get_generation(generation_id: str, request: Request) -> dict[str, Any]:
    ctx = context(request)
    gen = service.get_own(ctx.store, ctx.workspace(request), generation_id)
    return ctx.present(request, snapshot(gen))


@router.get("/generations/running", summary="The caller's queued and running generations")
def running_generations(
    request: Request,
    limit: int = Query(50, ge=1, le=100),
    workspace: str | None = Query(None, max_length=200),
) -> list[dict[str, Any]]:
    ctx = context(request)
    own = ctx.workspace(request)
    if workspace is not None and workspace not in (own.id, own.name):
        raise InvalidInput(
            f"workspace: this API key does not belong to workspace {workspace!r}",
            field="workspace",
        )
    base = ctx.base_url(request)
    return [
        running_item(gen, lambda key: ctx.sign_url(base, key))
        for gen in service.running(ctx.store, own, limit)
    ]


@router.get("/generations", summary="History, newest first")
def list_generations(
    request: Request,
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, max_length=64),
    status: str | None = Query(None, max_length=20),
) -> dict[str, Any]:
    ctx = context(request)
    items, next_cursor = service.history(
        ctx.store, ctx.workspace(request), limit=limit, cursor=cursor, status=status
    )
    return {
        "items": [ctx.present(request, snapshot(gen)) for gen in items],
        "next_cursor": next_cursor,
    }
