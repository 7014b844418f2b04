"""Server-Sent Events of one generation, read from the events table by sequence number.

Any replica can serve any stream and a client can resume with ``Last-Event-ID``. Events
carry only ``id:`` and ``data:`` lines, never ``event:`` names (api.md §4).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from reelserve.core.ports import Store

KEEPALIVE_S = 15.0
POLL_S = 0.2


def format_event(seq: int, record: Mapping[str, Any]) -> str:
    return f"id: {seq}\ndata: {json.dumps(record, separators=(',', ':'))}\n\n"


async def stream_events(
    store: Store,
    generation_id: str,
    after_seq: int,
    present: Callable[[Mapping[str, Any]], dict[str, Any]],
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
        await anyio.sleep(poll_s)


def parse_last_event_id(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
