"""What every route needs, built once by ``create_app`` and kept on ``app.state``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request

from reelserve.core.metrics import NO_METRICS, Metrics
from reelserve.core.ports import Caller, Store, Workspace
from reelserve.core.records import present
from reelserve.core.spec import MediaLimits
from reelserve.services.keys import authenticate
from reelserve.services.submit import Submitter

API_PREFIX = "/api/v1"

# (path, field, limits, character_orientation) → (file extension, seconds of a video or
# None for an image); raises InvalidInput naming the field when the bytes are not
# acceptable media.
UploadInspector = Callable[[Path, str, MediaLimits, str], tuple[str, float | None]]
UrlSigner = Callable[[str, str], tuple[str, Any]]  # (base_url, key) → (url, expires)


@dataclass
class ApiContext:
    store: Store
    # (channel, timeout) → True when woken before the timeout; see core.wakeups.
    wait_for_change: Callable[[str, float], Awaitable[bool]]
    submitter: Submitter
    sign_url: UrlSigner
    verify_url: Callable[[str, int, str], bool]
    file_path: Callable[[str], Path | None]
    store_upload: Callable[[str, Path], None]
    delete_blob: Callable[[str], None]
    inspect_upload: UploadInspector
    readiness: Callable[[], dict[str, Any]]
    tmp_dir: Path
    public_url: str | None = None
    metrics: Metrics = NO_METRICS
    # The body of /metrics and its content type.
    expose_metrics: Callable[[], tuple[bytes, str]] = lambda: (b"", "text/plain")

    def base_url(self, request: Request) -> str:
        if self.public_url:
            return self.public_url.rstrip("/") + API_PREFIX
        return str(request.base_url).rstrip("/") + API_PREFIX

    def present(self, request: Request, snap: Mapping[str, Any]) -> dict[str, Any]:
        base = self.base_url(request)
        return present(snap, lambda key: self.sign_url(base, key))

    def caller(self, request: Request) -> Caller:
        return authenticate(self.store, request.headers.get("authorization"))

    def workspace(self, request: Request) -> Workspace:
        return self.caller(request).workspace


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.reelserve
    return ctx
