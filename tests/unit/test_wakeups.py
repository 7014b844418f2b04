"""In-process wake-ups for threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading
import time

from reelserve.core.wakeups import Wakeups


def test_a_thread_is_woken_by_its_channel_only() -> None:
    wakeups = Wakeups()
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(wakeups.wait("queue", 5.0)))
    waiter.start()
    time.sleep(0.05)
    wakeups.publish("gen:other")
    time.sleep(0.05)
    assert results == []
    started = time.monotonic()
    wakeups.publish("queue")
    waiter.join(2)
    assert results == [True]
    assert time.monotonic() - started < 1


def test_waiting_times_out_without_a_publish() -> None:
    assert Wakeups().wait("queue", 0.05) is False


def test_an_asyncio_task_is_woken_from_another_thread() -> None:
    wakeups = Wakeups()

    async def scenario() -> tuple[bool, bool]:
        waiting = asyncio.create_task(wakeups.wait_async("gen:1", 5.0))
        await asyncio.sleep(0.05)
        threading.Thread(target=wakeups.publish, args=("gen:1",)).start()
        woken = await asyncio.wait_for(waiting, 2)
        timed_out = await wakeups.wait_async("gen:1", 0.05)
        return woken, timed_out

    assert asyncio.run(scenario()) == (True, False)
