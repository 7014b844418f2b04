"""Serves the playground's three static files: the page at ``/`` and its script and style
sheet under ``/playground/``.

Explicit routes over a fixed list of files, rather than a static mount at ``/``: a mount
there would answer every unknown path (and take 404s away from the JSON error handler),
and a fixed list cannot be walked out of with ``..``. None of it is in the OpenAPI
document, which describes the platform's API only.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from reelserve.core.errors import NotFound

router = APIRouter(include_in_schema=False)

PAGE = "index.html"
ASSETS: dict[str, str] = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}

# The page only talks to its own origin. Result videos are signed links that may point at
# REELSERVE_PUBLIC_URL, another origin, hence the wider media-src; blob: is for previews
# of the files the user picks.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: http: https:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
COMMON_HEADERS = {
    # Revalidate every time, so that an upgraded server never runs with a stale script.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


STATIC = resources.files("reelserve.api.playground") / "static"


def _read(name: str) -> bytes:
    # Read per request: three small files, and an edited page shows on reload.
    return (STATIC / name).read_bytes()


@router.get("/")
def page() -> Response:
    headers = {**COMMON_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
    return Response(_read(PAGE), media_type="text/html; charset=utf-8", headers=headers)


@router.get("/playground/{name}")
def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound("No such route or resource.")
    return Response(_read(name), media_type=media_type, headers=COMMON_HEADERS)
