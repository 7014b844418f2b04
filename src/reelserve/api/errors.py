"""One table from error class to HTTP status, one JSON error shape for every route."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reelserve.api.request_id import HEADER, of_scope
from reelserve.core import log_context
from reelserve.core.errors import (
    Conflict,
    ErrorCode,
    InputTooLarge,
    InsufficientCredits,
    InvalidInput,
    NotFound,
    ProviderUnavailable,
    RateLimited,
    ReelserveError,
    Unauthorized,
    UnsupportedModel,
)
from reelserve.core.validation import field_name

log = logging.getLogger("reelserve.api")

# Order matters: subclasses before their parents.
HTTP_STATUS: tuple[tuple[type[ReelserveError], int], ...] = (
    (InputTooLarge, 413),
    (InvalidInput, 400),
    (UnsupportedModel, 400),
    (Unauthorized, 401),
    (InsufficientCredits, 402),
    (NotFound, 404),
    (Conflict, 409),
    (RateLimited, 429),
    (ProviderUnavailable, 503),
)


def status_for(exc: ReelserveError) -> int:
    for kind, status in HTTP_STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "code": code, "message": message}


def error_response(
    code: str,
    message: str,
    status: int,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({**error_body(code, message), **extra}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ReelserveError)
    async def _ours(request: Request, exc: ReelserveError) -> JSONResponse:
        status = status_for(exc)
        if status == 500:
            return await _internal(request, exc)
        extra: dict[str, Any] = {}
        headers: dict[str, str] = {}
        if isinstance(exc, Conflict) and exc.record is not None:
            extra["record"] = request.app.state.reelserve.present(request, exc.record)
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return error_response(exc.code.value, exc.message, status, headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        loc = [p for p in first.get("loc", ()) if p not in ("query", "path", "body", "header")]
        name = field_name({"loc": loc})
        message = str(first.get("msg", "is invalid")).replace("Input should be", "must be")
        return error_response(ErrorCode.INVALID_INPUT.value, f"{name}: {message}", 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(ErrorCode.NOT_FOUND.value, "No such route or resource.", 404)
        if exc.status_code == 405:
            return error_response(
                ErrorCode.INVALID_INPUT.value,
                f"method: {request.method} is not allowed here",
                405,
            )
        return error_response(ErrorCode.INVALID_INPUT.value, str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # This handler runs outside the request-id middleware: take the id it gave.
        request_id = of_scope(request.scope) or uuid.uuid4().hex
        with log_context.bound(request=request_id):
            log.error("unhandled error path=%s", request.url.path, exc_info=exc)
        return error_response(
            ErrorCode.INTERNAL_ERROR.value,
            f"Internal error; quote request id {request_id} when reporting it.",
            500,
            {HEADER: request_id},
        )
