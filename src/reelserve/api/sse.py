"""Server-Sent Events of one generation, read from the events table by sequence number.

Any replica can serve any stream and a client can resume with ``Last-Event-ID``. Events
carry only ``id:`` and ``data:`` lines, never ``event:`` names (api.md §4).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from reelserve.core.metrics import Metrics
from reelserve.core.ports import Store
from reelserve.core.wakeups import task_channel

KEEPALIVE_S = 15.0
# Wake-ups bring events at once; the poll is the safety net (a separate worker process
# on SQLite, or a lost LISTEN connection).
POLL_S = 0.5


def format_event(seq: int, record: Mapping[str, Any]) -> str:
    return f"id: {seq}\ndata: {json.dumps(record, separators=(',', ':'))}\n\n"


async def stream_events(
    store: Store,
    generation_id: str,
    after_seq: int,
    present: Callable[[Mapping[str, Any]], dict[str, Any]],
    wait_for_change: Callable[[str, float], Awaitable[bool]],
    *,
    keepalive_s: float = KEEPALIVE_S,
    poll_s: float = POLL_S,
) -> AsyncIterator[str]:
    last_seq = after_seq
    last_sent = time.monotonic()
    while True:
        events = await run_in_threadpool(store.events_after, generation_id, last_seq)
        for event in events:
            last_seq = event.seq
            last_sent = time.monotonic()
            yield format_event(event.seq, present(event.snapshot))
            if event.status.terminal:
                return
        if time.monotonic() - last_sent >= keepalive_s:
            last_sent = time.monotonic()
            yield ": keepalive\n\n"
        await wait_for_change(task_channel(generation_id), poll_s)


async def counted(chunks: AsyncIterator[str], metrics: Metrics) -> AsyncIterator[str]:
    """The stream, counted as open from its first chunk until it ends or the client
    goes away."""
    metrics.stream_opened()
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        metrics.stream_closed()


def parse_last_event_id(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
