"""Sending one request with retries, in a sync and an async flavour; decoding the
answer into a model or the right exception."""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from reelserve.client._base import Config, RequestSpec
from reelserve.client._errors import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    ReelserveError,
    error_from_response,
)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _transport_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"Request timed out: {request.method} {request.url}", request=request
        )
    return APIConnectionError(
        f"Connection error on {request.method} {request.url}: {exc!r}", request=request
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise APIResponseError(
            f"{response.request.method} {response.request.url}: the answer is not JSON",
            response.text[:500],
        ) from exc


def parse(model: type[M], response: httpx.Response) -> M:
    body = _json(response)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise APIResponseError(f"unexpected {model.__name__} from the server: {exc}", body) from exc


def parse_as(kind: type[T], response: httpx.Response) -> T:
    body = _json(response)
    try:
        return TypeAdapter(kind).validate_python(body)
    except ValidationError as exc:
        raise APIResponseError(f"unexpected answer from the server: {exc}", body) from exc


class SyncTransport:
    def __init__(self, config: Config, http: httpx.Client | None) -> None:
        self.config = config
        self._owns_http = http is None
        self.http = http if http is not None else httpx.Client(timeout=config.timeout)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def send(self, spec: RequestSpec, *, stream: bool = False) -> httpx.Response:
        """A 2xx response (unread when ``stream``), after the retries ``spec`` allows."""
        attempt = 0
        while True:
            request, files = spec.build(self.http, self.config)
            error: ReelserveError
            cause: BaseException | None = None
            try:
                with files:
                    response = self.http.send(
                        request, stream=stream, follow_redirects=spec.follow_redirects
                    )
            except httpx.TransportError as exc:
                error, cause = _transport_error(exc, request), exc
            else:
                if response.is_success:
                    return response
                try:
                    response.read()
                finally:
                    response.close()
                error = error_from_response(response)
            delay = self.config.retry_delay(spec, attempt, error)
            if delay is None:
                raise error from cause
            self.sleep(delay)
            attempt += 1

    def close(self) -> None:
        if self._owns_http:
            self.http.close()


class AsyncTransport:
    def __init__(self, config: Config, http: httpx.AsyncClient | None) -> None:
        self.config = config
        self._owns_http = http is None
        self.http = http if http is not None else httpx.AsyncClient(timeout=config.timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def send(self, spec: RequestSpec, *, stream: bool = False) -> httpx.Response:
        """A 2xx response (unread when ``stream``), after the retries ``spec`` allows."""
        attempt = 0
        while True:
            request, files = spec.build(self.http, self.config)
            error: ReelserveError
            cause: BaseException | None = None
            try:
                with files:
                    response = await self.http.send(
                        request, stream=stream, follow_redirects=spec.follow_redirects
                    )
            except httpx.TransportError as exc:
                error, cause = _transport_error(exc, request), exc
            else:
                if response.is_success:
                    return response
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                error = error_from_response(response)
            delay = self.config.retry_delay(spec, attempt, error)
            if delay is None:
                raise error from cause
            await self.sleep(delay)
            attempt += 1

    async def close(self) -> None:
        if self._owns_http:
            await self.http.aclose()
