"""Internal routes for remote workers, under ``/internal/v1``: the work service over HTTP.

Every route needs a worker token (an API key is refused, as a worker token is on the
public routes); none appears in the public OpenAPI document. Claim, heartbeat and the
finishing calls are fenced by (task id, attempt, worker id) in the store exactly as for
an embedded worker, and a lost lease answers 409 in the contract's error shape.

Files: a worker downloads its task's uploaded inputs and uploads its output here, or
straight to the blob store when that gives presigned links (S3).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from reelserve.api.context import context
from reelserve.core.errors import Conflict, ErrorCode, InputTooLarge, InvalidInput, LeaseLost
from reelserve.core.ports import Blobs
from reelserve.core.records import Generation
from reelserve.core.spec import BLOB_REF_PREFIX, plan_from_dict
from reelserve.core.status import Status
from reelserve.core.wakeups import QUEUE
from reelserve.core.work_wire import generation_to_wire
from reelserve.core.worker_tokens import WorkerTokenStore
from reelserve.services.work import LocalCoordinator
from reelserve.services.worker_tokens import authenticate_worker

INTERNAL_PREFIX = "/internal/v1"
MAX_CLAIM_WAIT_S = 30.0
# A waiting claim looks at the queue at least this often, whatever the wake-ups say:
# retries become due by the clock alone, and a wake-up may be lost.
RECHECK_S = 1.0
PRESIGN_TTL_S = 15 * 60.0
MAX_OUTPUT_BYTES = 8 << 30
WORKER_ID = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class WorkerApi:
    """What the internal routes need, built by ``create_app``."""

    tokens: WorkerTokenStore
    work: LocalCoordinator
    blobs: Blobs
    tmp_dir: Path


def worker_api(request: Request) -> WorkerApi:
    api: WorkerApi = request.app.state.reelserve_workers
    return api


def _authorized(request: Request) -> None:
    authenticate_worker(worker_api(request).tokens, request.headers.get("authorization"))


router = APIRouter(
    prefix=INTERNAL_PREFIX, include_in_schema=False, dependencies=[Depends(_authorized)]
)


def install(app: FastAPI, api: WorkerApi) -> None:
    app.state.reelserve_workers = api
    app.include_router(router)


# -- bodies -------------------------------------------------------------------------------


class Registration(BaseModel):
    worker_id: str = WORKER_ID
    name: str = Field(min_length=1, max_length=200)
    models: list[str] = Field(max_length=100)
    info: dict[str, Any] = Field(default_factory=dict)


class ClaimRequest(BaseModel):
    worker_id: str = WORKER_ID
    models: list[str] = Field(min_length=1, max_length=100)
    wait_s: float = Field(0.0, ge=0.0, le=MAX_CLAIM_WAIT_S)


class Held(BaseModel):
    """Names the lease a call is about: only its holder may act on the task."""

    worker_id: str = WORKER_ID
    attempt: int = Field(ge=1)


class Beat(Held):
    progress: int = Field(ge=0, le=100)


class Completion(Held):
    data: dict[str, Any]
    actual_seconds: float | None = Field(None, ge=0.0)


class Failure(Held):
    code: ErrorCode
    message: str = Field(max_length=2000)
    retry: bool = False


class UploadRequest(Held):
    key: str = Field(min_length=1, max_length=500)


# -- fencing --------------------------------------------------------------------------------


def _lost(gen_id: str, held: Held) -> Conflict:
    return Conflict(
        f"attempt: worker {held.worker_id} does not hold task {gen_id} at attempt "
        f"{held.attempt} (its lease expired or a later attempt took over)"
    )


def _task(api: WorkerApi, gen_id: str, held: Held) -> Generation:
    """The stored task; 409 when it does not exist (nobody can hold it)."""
    gen = api.work.store.get(gen_id)
    if gen is None:
        raise _lost(gen_id, held)
    return gen


def _holding(api: WorkerApi, gen_id: str, held: Held) -> Generation:
    """The task, if this worker holds it at this attempt now (the store fences again)."""
    gen = _task(api, gen_id, held)
    if (
        gen.status is not Status.IN_PROGRESS
        or gen.attempt != held.attempt
        or gen.lease_owner != held.worker_id
    ):
        raise _lost(gen_id, held)
    return gen


def _output_prefix(gen: Generation, attempt: int) -> str:
    return f"outputs/{gen.workspace_id}/{gen.id}-{attempt}."


def _check_output_key(gen: Generation, attempt: int, key: str, field: str) -> None:
    if not key.startswith(_output_prefix(gen, attempt)) or ".." in key:
        raise InvalidInput(
            f"{field}: must be an output of this task and attempt "
            f"({_output_prefix(gen, attempt)}*)",
            field=field,
        )


def _new_temp(folder: Path, prefix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=prefix)
    os.close(fd)
    return Path(name)


def _finished(gen: Generation) -> dict[str, Any]:
    return {"generation": generation_to_wire(gen)}


# -- presence -----------------------------------------------------------------------------


@router.post("/workers", status_code=204)
def register(body: Registration, request: Request) -> Response:
    store = worker_api(request).work.store
    # A retried registration (its answer lost) must not fail on its own first row.
    store.remove_worker(body.worker_id)
    store.register_worker(body.worker_id, body.name, body.models, body.info)
    return Response(status_code=204)


@router.post("/workers/{worker_id}/touch", status_code=204)
def touch(worker_id: str, request: Request) -> Response:
    worker_api(request).work.store.touch_worker(worker_id)
    return Response(status_code=204)


@router.delete("/workers/{worker_id}", status_code=204)
def unregister(worker_id: str, request: Request) -> Response:
    worker_api(request).work.store.remove_worker(worker_id)
    return Response(status_code=204)


# -- work ---------------------------------------------------------------------------------


@router.post("/claim")
async def claim(body: ClaimRequest, request: Request) -> Response:
    """The next queued task for these models, waiting up to ``wait_s`` for one (204)."""
    api = worker_api(request)
    wait_for_change = context(request).wait_for_change
    loop = asyncio.get_running_loop()
    deadline = loop.time() + body.wait_s
    while True:
        # A worker that went away must not be handed a task it will never run.
        if await request.is_disconnected():
            return Response(status_code=204)
        gen = await run_in_threadpool(api.work.claim, body.worker_id, body.models)
        if gen is not None:
            return JSONResponse({**_finished(gen), "lease_s": api.work.policy.lease_s})
        remaining = deadline - loop.time()
        if remaining <= 0:
            return Response(status_code=204)
        await wait_for_change(QUEUE, min(remaining, RECHECK_S))


@router.post("/tasks/{gen_id}/heartbeat")
def heartbeat(gen_id: str, body: Beat, request: Request) -> dict[str, Any]:
    """Extends the lease; answers whether a cancel was asked for."""
    work = worker_api(request).work
    try:
        beat = work.store.heartbeat(
            gen_id, body.attempt, body.worker_id, body.progress, work.policy.lease_s
        )
    except LeaseLost:
        raise _lost(gen_id, body) from None
    return {"cancel_requested": beat.cancel_requested, "lease_s": work.policy.lease_s}


@router.post("/tasks/{gen_id}/complete")
def complete(gen_id: str, body: Completion, request: Request) -> dict[str, Any]:
    api = worker_api(request)
    gen = _task(api, gen_id, body)
    videos = body.data.get("videos")
    if not isinstance(videos, list) or not videos:
        raise InvalidInput("data.videos: must be a non-empty list", field="data.videos")
    for index, video in enumerate(videos):
        key = video.get("key") if isinstance(video, dict) else None
        field = f"data.videos[{index}].key"
        if not isinstance(key, str):
            raise InvalidInput(f"{field}: must be a string", field=field)
        _check_output_key(gen, body.attempt, key, field)
    try:
        done = api.work.complete(
            replace(gen, attempt=body.attempt), body.worker_id, body.data, body.actual_seconds
        )
    except LeaseLost:
        again = api.work.store.get(gen_id)
        # Only the holder of an attempt can complete it: this is a retry of our own
        # completion whose answer was lost. Say so, rather than 409 (which would make the
        # worker drop the output that the record now points at).
        if again is None or again.status is not Status.COMPLETED or again.attempt != body.attempt:
            raise _lost(gen_id, body) from None
        done = again
    return _finished(done)


@router.post("/tasks/{gen_id}/fail")
def fail(gen_id: str, body: Failure, request: Request) -> dict[str, Any]:
    api = worker_api(request)
    gen = _task(api, gen_id, body)
    try:
        done = api.work.fail(
            replace(gen, attempt=body.attempt),
            body.worker_id,
            body.code.value,
            body.message,
            retry=body.retry,
        )
    except LeaseLost:
        raise _lost(gen_id, body) from None
    return _finished(done)


@router.post("/tasks/{gen_id}/canceled")
def canceled(gen_id: str, body: Held, request: Request) -> dict[str, Any]:
    api = worker_api(request)
    gen = _task(api, gen_id, body)
    try:
        done = api.work.canceled(replace(gen, attempt=body.attempt), body.worker_id)
    except LeaseLost:
        raise _lost(gen_id, body) from None
    return _finished(done)


# -- files ----------------------------------------------------------------------------------


@router.post("/tasks/{gen_id}/upload-url")
def upload_url(gen_id: str, body: UploadRequest, request: Request) -> dict[str, Any]:
    """Where to PUT an output: a presigned URL of the blob store, or null for the
    internal ``PUT /tasks/{id}/files/{key}`` route."""
    api = worker_api(request)
    gen = _holding(api, gen_id, body)
    _check_output_key(gen, body.attempt, body.key, "key")
    return {"url": api.blobs.presigned_put(body.key, PRESIGN_TTL_S)}


@router.put("/tasks/{gen_id}/files/{key:path}", status_code=204)
async def upload(
    gen_id: str,
    key: str,
    request: Request,
    worker_id: str = Query(min_length=1, max_length=40),
    attempt: int = Query(ge=1),
) -> Response:
    """Streams the body to a temporary file, then into the blob store under ``key``."""
    api = worker_api(request)
    held = Held(worker_id=worker_id, attempt=attempt)
    gen = await run_in_threadpool(_holding, api, gen_id, held)
    _check_output_key(gen, attempt, key, "key")
    tmp = await run_in_threadpool(_new_temp, api.tmp_dir, "upload-")
    try:
        handle = await run_in_threadpool(tmp.open, "wb")
        try:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_OUTPUT_BYTES:
                    raise InputTooLarge(
                        f"body: an output is at most {MAX_OUTPUT_BYTES} bytes", field="body"
                    )
                await run_in_threadpool(handle.write, chunk)
        finally:
            await run_in_threadpool(handle.close)
        try:
            await run_in_threadpool(api.blobs.put_file, key, tmp)
        except ValueError:
            raise InvalidInput("key: not a valid file key", field="key") from None
    finally:
        await run_in_threadpool(tmp.unlink, True)
    return Response(status_code=204)


@router.get("/tasks/{gen_id}/files/{key:path}")
def download(
    gen_id: str,
    key: str,
    request: Request,
    worker_id: str = Query(min_length=1, max_length=40),
    attempt: int = Query(ge=1),
) -> Response:
    """One of the task's uploaded inputs: a redirect to a presigned GET, or the bytes."""
    api = worker_api(request)
    gen = _holding(api, gen_id, Held(worker_id=worker_id, attempt=attempt))
    inputs = {
        value.removeprefix(BLOB_REF_PREFIX)
        for value in plan_from_dict(gen.plan).media.values()
        if value.startswith(BLOB_REF_PREFIX)
    }
    if key not in inputs:
        raise InvalidInput("key: must be one of this task's uploaded inputs", field="key")
    presigned = api.blobs.presigned_get(key, PRESIGN_TTL_S)
    if presigned is not None:
        return RedirectResponse(presigned, status_code=307)
    local = api.blobs.local_path(key)
    if local is not None:
        return FileResponse(local, media_type="application/octet-stream")
    tmp = _new_temp(api.tmp_dir, "download-")
    api.blobs.fetch_to(key, tmp)
    return FileResponse(
        tmp, media_type="application/octet-stream", background=BackgroundTask(tmp.unlink)
    )


@router.delete("/tasks/{gen_id}/files/{key:path}", status_code=204)
def delete_output(
    gen_id: str,
    key: str,
    request: Request,
    worker_id: str = Query(min_length=1, max_length=40),
    attempt: int = Query(ge=1),
) -> Response:
    """Drops an output the task will not keep (a failed, canceled or superseded attempt).

    Allowed after the lease is gone too; never for the output a completed record shows.
    """
    api = worker_api(request)
    held = Held(worker_id=worker_id, attempt=attempt)
    gen = _task(api, gen_id, held)
    _check_output_key(gen, attempt, key, "key")
    kept = {video.get("key") for video in (gen.data or {}).get("videos", [])}
    if key in kept:
        raise Conflict(f"key: {key} is the output of the completed task and is kept")
    api.blobs.delete(key)
    return Response(status_code=204)
