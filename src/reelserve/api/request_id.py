"""Request ids: every response carries ``X-Request-ID`` and every log line of the request
its ``request_id``.

A client's ``X-Request-ID`` is kept when it is 1..128 characters of letters, digits and
``-_.:``; anything else (or none) is replaced by a new random id, never refused, since a
tracing header must not break a request. A create stores the id with the task, so the
worker's log lines for that task carry it too.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelserve.core import log_context

HEADER = "X-Request-ID"
MAX_LENGTH = 128
_ALLOWED = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_LENGTH}}}")


def accepted(value: str | None) -> str | None:
    """The client's id when it is acceptable, else None."""
    if value is not None and _ALLOWED.fullmatch(value):
        return value
    return None


def of_scope(scope: Scope) -> str | None:
    """The id given to this request (also after the middleware has returned, e.g. in the
    handler of unexpected errors, which runs outside it)."""
    value = scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted(Headers(scope=scope).get(HEADER)) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        with log_context.bound(request=request_id):
            await self.app(scope, receive, send_with_id)
