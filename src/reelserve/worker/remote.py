"""A worker on another host: the ``Coordinator`` and ``OutputStore`` over the API's
internal routes (``/internal/v1``), authenticated by a worker token. No database or blob
store credentials are needed on the worker's host.

Network trouble is expected between hosts: calls are retried with backoff on connection
errors and 5xx answers. Fencing is the server's: 409 means this worker no longer holds the
task (``LeaseLost``). A heartbeat that cannot get through does not stop the job until the
lease it last extended would have run out; by then another worker may hold the task.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from reelserve.core.errors import LeaseLost
from reelserve.core.ports import Heartbeat
from reelserve.core.records import Generation
from reelserve.core.work_wire import generation_from_wire
from reelserve.worker.runner import OutputStore

log = logging.getLogger(__name__)

INTERNAL_PATH = "/internal/v1"
TRANSIENT_STATUS = frozenset({500, 502, 503, 504})


class WorkerRefused(Exception):
    """The API refused the worker token (missing, unknown or revoked)."""


class ApiError(Exception):
    """The API answered with an error that retrying will not change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 0.2
    max_s: float = 5.0
    # How long to keep trying a call before giving up: the finishing calls and the first
    # registration are worth waiting for; a heartbeat is tried again at the next beat.
    finish_s: float = 120.0
    register_s: float = 60.0
    beat_s: float = 2.0
    beat_timeout_s: float = 5.0


@dataclass
class _Lease:
    gen_id: str
    attempt: int
    worker_id: str
    lease_s: float
    extended_at: float  # monotonic time of the last successful claim or heartbeat


def internal_base(api_url: str) -> str:
    """``http://host:8000``, ``.../`` or ``.../api/v1`` → ``http://host:8000/internal/v1``."""
    root = api_url.rstrip("/").removesuffix("/api/v1")
    return root + INTERNAL_PATH


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text[:200]


class HttpCoordinator:
    def __init__(
        self,
        api_url: str,
        worker_token: str,
        *,
        claim_wait_s: float = 10.0,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = internal_base(api_url)
        self.claim_wait_s = claim_wait_s
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {worker_token}"},
            timeout=httpx.Timeout(timeout_s, connect=10.0),
        )
        # For presigned blob-store URLs: they must never see the worker token.
        self._bare = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0))
        self._lease: _Lease | None = None
        self._lock = threading.Lock()
        self._claim_delay = self.retry.initial_s

    def close(self) -> None:
        self._http.close()
        self._bare.close()

    # -- HTTP with retries --------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        budget_s: float,
        client: httpx.Client | None = None,
        upload: Path | None = None,
        download: Path | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, repeated on connection errors and 5xx until ``budget_s`` is spent.

        401 raises WorkerRefused, 409 LeaseLost, any other 4xx ApiError. ``upload`` sends
        a file as the body (reopened on each try); ``download`` writes a 2xx body there.
        """
        http = client or self._http
        deadline = time.monotonic() + budget_s
        delay = self.retry.initial_s
        while True:
            try:
                if upload is not None:
                    with upload.open("rb") as body:
                        response = http.request(method, url, content=body, **kwargs)
                elif download is not None:
                    response = self._stream_to(http, method, url, download, **kwargs)
                else:
                    response = http.request(method, url, **kwargs)
                if response.status_code not in TRANSIENT_STATUS:
                    return self._checked(response)
                failure: Exception = ApiError(response.status_code, _message(response))
            except httpx.TransportError as exc:
                failure = exc
            if time.monotonic() + delay > deadline:
                raise failure
            # Without the query: a presigned URL's signature is a credential.
            where = url.split("?", 1)[0]
            log.warning("%s %s failed (%s); retrying in %.1fs", method, where, failure, delay)
            self._sleep(delay)
            delay = min(delay * 2, self.retry.max_s)

    @staticmethod
    def _stream_to(
        http: httpx.Client, method: str, url: str, dest: Path, **kwargs: Any
    ) -> httpx.Response:
        with http.stream(method, url, **kwargs) as response:
            if response.is_success:
                with dest.open("wb") as handle:
                    for chunk in response.iter_bytes(1 << 20):
                        handle.write(chunk)
            else:
                response.read()
            return response

    @staticmethod
    def _checked(response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status < 400:
            return response
        if status == 401:
            raise WorkerRefused(_message(response))
        if status == 409:
            raise LeaseLost(_message(response))
        raise ApiError(status, _message(response))

    # -- presence -----------------------------------------------------------------------

    def register(self, worker_id: str, name: str, models: list[str], info: dict[str, Any]) -> None:
        body = {"worker_id": worker_id, "name": name, "models": models, "info": info}
        self._call("POST", "/workers", json=body, budget_s=self.retry.register_s)

    def touch(self, worker_id: str) -> None:
        self._call("POST", f"/workers/{worker_id}/touch", budget_s=self.retry.beat_s)

    def unregister(self, worker_id: str) -> None:
        self._call("DELETE", f"/workers/{worker_id}", budget_s=self.retry.beat_s)

    # -- work ---------------------------------------------------------------------------

    def claim(self, worker_id: str, models: list[str]) -> Generation | None:
        """Long-polls for a task; on trouble waits a growing pause and answers None."""
        body = {"worker_id": worker_id, "models": models, "wait_s": self.claim_wait_s}
        try:
            response = self._call(
                "POST", "/claim", json=body, budget_s=0.0, timeout=self.claim_wait_s + 30.0
            )
        except (httpx.TransportError, ApiError, WorkerRefused) as exc:
            log.warning("claim failed (%s); next try in %.1fs", exc, self._claim_delay)
            self._sleep(self._claim_delay)
            self._claim_delay = min(self._claim_delay * 2, self.retry.max_s)
            return None
        self._claim_delay = self.retry.initial_s
        if response.status_code == 204:
            return None
        payload = response.json()
        gen = generation_from_wire(payload["generation"])
        with self._lock:
            self._lease = _Lease(
                gen.id, gen.attempt, worker_id, float(payload["lease_s"]), time.monotonic()
            )
        return gen

    def heartbeat(self, gen: Generation, worker_id: str, progress: int) -> Heartbeat:
        body = {"worker_id": worker_id, "attempt": gen.attempt, "progress": progress}
        try:
            response = self._call(
                "POST",
                f"/tasks/{gen.id}/heartbeat",
                json=body,
                budget_s=self.retry.beat_s,
                timeout=self.retry.beat_timeout_s,
            )
        except (httpx.TransportError, ApiError, WorkerRefused) as exc:
            lease = self._held(gen)
            if lease is not None and time.monotonic() - lease.extended_at > lease.lease_s:
                raise LeaseLost(
                    f"no heartbeat got through for longer than the {lease.lease_s:g}s lease"
                ) from exc
            raise
        payload = response.json()
        lease = self._held(gen)
        if lease is not None:
            lease.extended_at = time.monotonic()
            lease.lease_s = float(payload.get("lease_s", lease.lease_s))
        return Heartbeat(cancel_requested=bool(payload["cancel_requested"]))

    def _held(self, gen: Generation) -> _Lease | None:
        with self._lock:
            lease = self._lease
        if lease is None or (lease.gen_id, lease.attempt) != (gen.id, gen.attempt):
            return None
        return lease

    def _finish(self, gen: Generation, verb: str, body: dict[str, Any]) -> Generation:
        response = self._call(
            "POST", f"/tasks/{gen.id}/{verb}", json=body, budget_s=self.retry.finish_s
        )
        return generation_from_wire(response.json()["generation"])

    def complete(
        self,
        gen: Generation,
        worker_id: str,
        data: dict[str, Any],
        actual_seconds: float | None = None,
    ) -> Generation:
        body = {
            "worker_id": worker_id,
            "attempt": gen.attempt,
            "data": data,
            "actual_seconds": actual_seconds,
        }
        return self._finish(gen, "complete", body)

    def fail(
        self, gen: Generation, worker_id: str, code: str, message: str, *, retry: bool = False
    ) -> Generation:
        body = {
            "worker_id": worker_id,
            "attempt": gen.attempt,
            "code": code,
            "message": message,
            "retry": retry,
        }
        return self._finish(gen, "fail", body)

    def canceled(self, gen: Generation, worker_id: str) -> Generation:
        return self._finish(gen, "canceled", {"worker_id": worker_id, "attempt": gen.attempt})

    # -- files of the task held now -----------------------------------------------------

    def files(self) -> OutputStore:
        """The worker's file access, through the API (or presigned blob-store links).

        A worker runs one task at a time: every file call is about the task it holds.
        """
        return OutputStore(save=self._save, delete=self._delete, read=self._read)

    def _current(self) -> _Lease:
        with self._lock:
            lease = self._lease
        if lease is None:
            raise RuntimeError("no task is held: files are reachable only for the task held")
        return lease

    def _file_url(self, lease: _Lease, key: str) -> str:
        return f"/tasks/{lease.gen_id}/files/{quote(key)}"

    @staticmethod
    def _fence(lease: _Lease) -> dict[str, Any]:
        return {"worker_id": lease.worker_id, "attempt": lease.attempt}

    def _save(self, key: str, source: Path) -> None:
        lease = self._current()
        target = self._call(
            "POST",
            f"/tasks/{lease.gen_id}/upload-url",
            json={**self._fence(lease), "key": key},
            budget_s=self.retry.finish_s,
        ).json()
        if target.get("url"):
            self._call(
                "PUT", target["url"], upload=source, client=self._bare, budget_s=self.retry.finish_s
            )
            return
        self._call(
            "PUT",
            self._file_url(lease, key),
            params=self._fence(lease),
            upload=source,
            headers={"Content-Type": "application/octet-stream"},
            budget_s=self.retry.finish_s,
        )

    def _read(self, key: str, dest: Path) -> Path:
        lease = self._current()
        response = self._call(
            "GET",
            self._file_url(lease, key),
            params=self._fence(lease),
            download=dest,
            budget_s=self.retry.finish_s,
        )
        if response.status_code in (302, 303, 307, 308):
            location = response.headers["location"]
            self._call("GET", location, client=self._bare, download=dest, budget_s=60.0)
        return dest

    def _delete(self, key: str) -> None:
        """Best effort: an output left behind costs disk, never correctness."""
        lease = self._current()
        try:
            self._call(
                "DELETE",
                self._file_url(lease, key),
                params=self._fence(lease),
                budget_s=self.retry.beat_s,
            )
        except Exception as exc:
            log.warning("could not delete %s: %s", key, exc)
