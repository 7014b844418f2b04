"""Ids that every log line of a unit of work carries: the request and the generation.

Context variables, so each thread and asyncio task has its own: the API's middleware binds
the request id; the worker binds both ids of the task it runs (the request id stored with
the task at create), so one ``request_id`` leads from the API's log to the worker's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("reelserve_request_id", default=None)
_generation_id: ContextVar[str | None] = ContextVar("reelserve_generation_id", default=None)


def request_id() -> str | None:
    return _request_id.get()


def generation_id() -> str | None:
    return _generation_id.get()


@contextmanager
def bound(*, request: str | None = None, generation: str | None = None) -> Iterator[None]:
    """Bind the given ids for the block; an id not given keeps its current value."""
    tokens = []
    if request is not None:
        tokens.append((_request_id, _request_id.set(request)))
    if generation is not None:
        tokens.append((_generation_id, _generation_id.set(generation)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
