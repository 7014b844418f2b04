"""In-process wake-ups: "something changed on channel X" for threads and asyncio tasks.

The store publishes after each commit (``queue`` when work arrives, ``gen:<id>`` when a
task changes); on PostgreSQL a LISTEN thread republishes other processes' NOTIFYs here.
Waiters always keep a slow poll as the safety net, so a lost wake-up only costs latency.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

QUEUE = "queue"


def task_channel(generation_id: str) -> str:
    return f"gen:{generation_id}"


class Wakeups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, set[threading.Event]] = defaultdict(set)
        self._tasks: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(
            set
        )

    def publish(self, channel: str) -> None:
        with self._lock:
            events = list(self._threads.get(channel, ()))
            tasks = list(self._tasks.get(channel, ()))
        for event in events:
            event.set()
        for loop, async_event in tasks:
            # Another thread's loop may already be closed; then nobody is waiting there.
            if not loop.is_closed():
                loop.call_soon_threadsafe(async_event.set)

    def wait(self, channel: str, timeout_s: float) -> bool:
        """Block until ``channel`` is published or the timeout passes; True if woken."""
        event = threading.Event()
        with self._lock:
            self._threads[channel].add(event)
        try:
            return event.wait(timeout_s)
        finally:
            with self._lock:
                self._threads[channel].discard(event)
                if not self._threads[channel]:
                    del self._threads[channel]

    async def wait_async(self, channel: str, timeout_s: float) -> bool:
        """The asyncio twin of ``wait``: no thread is held while waiting."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._tasks[channel].add(entry)
        try:
            await asyncio.wait_for(entry[1].wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._tasks[channel].discard(entry)
                if not self._tasks[channel]:
                    del self._tasks[channel]
