"""HTTP request latency by route template (``/api/v1/generation/{generation_id}``, never
the raw path, so ids do not explode the series), method and status."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelserve.core.metrics import Metrics

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The matched route's template with the prefix it was included under.

    A route included with a prefix may know only its own part (``/generation/{id}``), so
    the prefix is the literal start of the path before the part that the route matches.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(template, str):
        return UNMATCHED
    path = str(scope.get("path", ""))
    if pattern is not None:
        for cut in (i for i, char in enumerate(path) if char == "/"):
            if pattern.fullmatch(path[cut:]):
                return path[:cut] + template
    return template


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app answers: an exception escaping here becomes a 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self.metrics.http_request(
                scope["method"], route_template(scope), status, time.perf_counter() - started
            )
