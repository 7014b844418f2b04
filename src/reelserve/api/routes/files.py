"""Signed downloads of outputs and uploads: no Bearer, so a ``<video>`` tag can play them."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from reelserve.api.context import context
from reelserve.core.errors import NotFound

router = APIRouter()


@router.get("/files/{key:path}", summary="Download a file by its signed URL")
def download(
    key: str,
    request: Request,
    expires: int = Query(..., ge=0),
    signature: str = Query(..., min_length=64, max_length=64),
) -> FileResponse:
    ctx = context(request)
    # Bad signatures, expired links and missing files look alike: nothing to probe.
    if not ctx.verify_url(key, expires, signature):
        raise NotFound("file: the link is invalid or has expired", field="file")
    try:
        path = ctx.file_path(key)
    except ValueError:
        path = None
    if path is None:
        raise NotFound("file: the link is invalid or has expired", field="file")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(
        path, media_type=media_type, filename=path.name, content_disposition_type="inline"
    )
