"""``Client`` and ``AsyncClient``: configuration, the HTTP connection pool, and the API
nouns (``generations``, ``credits()``)."""

from __future__ import annotations

from types import TracebackType

import httpx

from reelserve.client._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    Backoff,
    RequestSpec,
    make_config,
)
from reelserve.client._transport import AsyncTransport, SyncTransport, parse
from reelserve.client.generations import AsyncGenerations, Generations
from reelserve.client.types import Credits

__all__ = ["AsyncClient", "Client"]


class Client:
    """A synchronous client of a skills.video-compatible server.

    ``base_url`` defaults to ``$REELSERVE_BASE_URL``, then ``http://127.0.0.1:8000/api/v1``;
    ``api_key`` to ``$REELSERVE_API_KEY`` (one of them is required). Safe calls are
    retried ``max_retries`` times on connection errors, 429 and 5xx, waiting as
    ``backoff`` says. An ``http_client`` passed in is used as is and left open by
    ``close()``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        config = make_config(base_url, api_key, timeout, max_retries, backoff)
        self._transport = SyncTransport(config, http_client)
        self.generations = Generations(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.config.base_url

    @property
    def max_retries(self) -> int:
        return self._transport.config.max_retries

    def credits(self) -> Credits:
        """The workspace's credit balances."""
        spec = RequestSpec("GET", self._transport.config.url("credits"))
        return parse(Credits, self._transport.send(spec))

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"


class AsyncClient:
    """The asynchronous twin of ``Client`` (asyncio), with the same arguments; its
    methods are coroutines and its streams async iterators."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        config = make_config(base_url, api_key, timeout, max_retries, backoff)
        self._transport = AsyncTransport(config, http_client)
        self.generations = AsyncGenerations(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.config.base_url

    @property
    def max_retries(self) -> int:
        return self._transport.config.max_retries

    async def credits(self) -> Credits:
        """The workspace's credit balances."""
        spec = RequestSpec("GET", self._transport.config.url("credits"))
        return parse(Credits, await self._transport.send(spec))

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"
