"""Admission control under priorities: a query is judged on the queued work of its class and
above, may lower its class but not raise it, and takes the place of the lowest-priority,
latest-deadline query of a full queue, which is answered as refused at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from clipper.core.exceptions import Overloaded
from clipper.core.records import RegistrySnapshot
from clipper.dataplane.dataplane import Answers, DataPlane
from clipper.rpc.protocol import BatchReply
from tests.unit.dataplane.test_admission_path import (
    MODEL_ID,
    REFUSED,
    FakeClock,
    busy_after_a_50ms_batch,
    ignore,
    with_version,
)
from tests.unit.dataplane.test_model_serving import FakeWorker, buffer, snapshot, values

HIGH = 2


def ranked(
    overload: str = "default", cache: bool = True, max_queued: int = 100
) -> RegistrySnapshot:
    """The app at priority class HIGH, its model one replica with batches of one."""
    base = snapshot()
    app = replace(base.apps["app"], priority=HIGH, overload=overload, cache_enabled=cache)
    return with_version(replace(base, apps={"app": app}), max_queued=max_queued)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def plane(clock: FakeClock) -> AsyncIterator[DataPlane]:
    dataplane = DataPlane(clock=clock)
    dataplane.apply(ranked())
    yield dataplane
    for removed in dataplane.apply(RegistrySnapshot()):
        await removed.close()


def ask(plane: DataPlane, value: float, deadline: float, priority: int | None) -> Answers | None:
    """A query's answers if given at once; else None (the answers go to `ignore`)."""
    return plane.predict_then("app", [buffer(value)], None, deadline, None, ignore, priority)


async def test_a_high_priority_query_is_admitted_where_a_low_one_is_refused(
    plane: DataPlane, clock: FakeClock
) -> None:
    await busy_after_a_50ms_batch(plane, clock)
    for value in (7.0, 8.0):  # two low-priority queries queued behind the batch in flight
        assert ask(plane, value, clock() + 60, 0) is None

    # Behind 2 queued and the batch in flight: 200 ms, past a 120 ms deadline.
    refused = ask(plane, 3.0, clock() + 0.12, 0)
    # Its class has nothing queued: the batch in flight, then its own (100 ms).
    admitted = ask(plane, 4.0, clock() + 0.12, None)

    assert isinstance(refused, list)
    assert refused[0].explanation == REFUSED
    assert admitted is None
    serving = plane.serving(MODEL_ID)
    assert serving is not None
    assert serving.queue.ahead_of(HIGH) == 1


async def test_the_high_priority_query_is_dispatched_before_earlier_low_ones(
    plane: DataPlane, clock: FakeClock
) -> None:
    worker = FakeWorker(plane.attach, plane.detach)
    worker.register()
    first = asyncio.ensure_future(plane.predict("app", [buffer(1.0)], None, clock() + 60))
    held = await worker.next_batch()  # the replica is busy: what follows is queued
    for value in (7.0, 8.0):
        ask(plane, value, clock() + 5, 0)
    ask(plane, 9.0, clock() + 50, None)

    worker.answer(BatchReply(held.id, [1]))
    await first

    assert values(await worker.next_batch()) == [9.0]


async def test_a_query_cannot_raise_itself_above_its_app_class(
    plane: DataPlane, clock: FakeClock
) -> None:
    plane.apply(replace(ranked(), apps={"app": replace(ranked().apps["app"], priority=0)}))
    await busy_after_a_50ms_batch(plane, clock)
    for value in (7.0, 8.0):
        ask(plane, value, clock() + 60, 0)

    answers = ask(plane, 3.0, clock() + 0.12, 9)  # capped at the app's class, 0

    assert isinstance(answers, list)
    assert answers[0].explanation == REFUSED


async def test_a_full_queue_displaces_its_lowest_priority_latest_deadline_query(
    plane: DataPlane, clock: FakeClock
) -> None:
    plane.apply(ranked(max_queued=2))
    await busy_after_a_50ms_batch(plane, clock)
    early = plane.predict("app", [buffer(7.0)], None, clock() + 50, priority=0)
    late = plane.predict("app", [buffer(8.0)], None, clock() + 60, priority=0)
    early_task, late_task = asyncio.ensure_future(early), asyncio.ensure_future(late)
    await asyncio.sleep(0)

    # Full: a query of its class is refused, one of a higher class takes the late one's place.
    full = ask(plane, 5.0, clock() + 60, 0)
    admitted = ask(plane, 6.0, clock() + 60, None)

    assert isinstance(full, list)
    assert full[0].explanation is not None
    assert "is full (2 queued); query refused at once" in full[0].explanation
    assert admitted is None
    [displaced] = await asyncio.wait_for(late_task, 2)
    assert displaced.is_default
    assert "a query of a higher priority took this one's place" in str(displaced.explanation)
    assert not early_task.done()
    early_task.cancel()


@pytest.mark.parametrize("cache", [True, False])
async def test_a_displaced_query_of_an_app_that_rejects_gets_overloaded(
    plane: DataPlane, clock: FakeClock, cache: bool
) -> None:
    plane.apply(ranked("reject", cache, max_queued=1))
    await busy_after_a_50ms_batch(plane, clock)
    told: list[Answers] = []
    plane.predict_then("app", [buffer(7.0)], None, clock() + 60, None, told.append, 0)

    assert ask(plane, 6.0, clock() + 60, None) is None
    await asyncio.sleep(0)  # a cached computation's waiter is told by a done callback

    [answer] = told
    assert isinstance(answer, Overloaded)
    assert answer.retry_after_s >= 1.0
