"""One timer for every waiting query: `DeadlineTimer` and `Waiter`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from clipper.dataplane.deadlines import DeadlineTimer, Waiter


def futures(count: int) -> list[asyncio.Future[Any]]:
    loop = asyncio.get_running_loop()
    return [loop.create_future() for _ in range(count)]


async def test_a_waiter_fires_once_when_all_its_futures_are_done() -> None:
    pending, fired = futures(2), []
    timer = DeadlineTimer(time.monotonic)
    timer.add(time.monotonic() + 60, Waiter(pending, lambda: fired.append("done")))
    pending[0].set_result(1)
    await asyncio.sleep(0)
    assert fired == []
    pending[1].set_result(2)
    await asyncio.sleep(0)
    assert fired == ["done"]
    timer.close()


async def test_a_waiter_fires_at_its_deadline_and_forgets_its_pending_futures() -> None:
    pending, fired = futures(1), []
    timer = DeadlineTimer(time.monotonic)
    started = time.monotonic()
    timer.add(started + 0.05, Waiter(pending, lambda: fired.append(time.monotonic())))
    await asyncio.sleep(0.2)
    assert len(fired) == 1
    assert fired[0] - started >= 0.045
    pending[0].set_result(1)  # late: the callback does not run again
    await asyncio.sleep(0)
    assert len(fired) == 1
    assert len(timer) == 0


async def test_an_earlier_deadline_rearms_the_timer() -> None:
    fired: list[str] = []
    timer = DeadlineTimer(time.monotonic)
    now = time.monotonic()
    timer.add(now + 30, Waiter(futures(1), lambda: fired.append("late")))
    timer.add(now + 0.02, Waiter(futures(1), lambda: fired.append("soon")))
    await asyncio.sleep(0.15)
    assert fired == ["soon"]
    assert len(timer) == 1  # the later one still waits
    timer.close()


async def test_answered_waiters_leave_the_heap_as_new_ones_arrive() -> None:
    timer = DeadlineTimer(time.monotonic)
    deadline = time.monotonic() + 60
    for _ in range(1000):
        pending = futures(1)
        timer.add(deadline, Waiter(pending, lambda: None))
        pending[0].set_result(None)
        await asyncio.sleep(0)
    assert len(timer) <= 2  # not one entry per query ever made
    timer.close()


async def test_a_waiter_on_no_pending_future_fires_only_at_its_deadline() -> None:
    fired: list[int] = []
    timer = DeadlineTimer(time.monotonic)
    timer.add(time.monotonic() + 0.01, Waiter([], lambda: fired.append(1)))
    await asyncio.sleep(0.1)
    assert fired == [1]
