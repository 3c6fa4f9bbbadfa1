"""The batch queue under priorities: higher classes first, deadline order within one, the
count a new query waits behind, and the query a full queue gives up."""

from __future__ import annotations

import asyncio

from clipper.batching.queue import BatchQueue, PendingQuery


def query(query_id: int, deadline: float, priority: int) -> PendingQuery:
    future = asyncio.get_running_loop().create_future()
    return PendingQuery(query_id, b"%d" % query_id, deadline, future, priority)


def ids(queries: list[PendingQuery]) -> list[int]:
    return [q.query_id for q in queries]


def queue_of(*queued: tuple[float, int]) -> BatchQueue:
    """A queue holding one query per (deadline, priority), with ids 0, 1, 2, ..."""
    queue = BatchQueue()
    for query_id, (deadline, priority) in enumerate(queued):
        queue.put(query(query_id, deadline, priority))
    return queue


async def test_higher_priorities_are_taken_first_in_deadline_order_within_each() -> None:
    queue = queue_of((1.0, 0), (4.0, 2), (2.0, 1), (3.0, 2), (0.5, 0))

    batch, expired = queue.take(10, now=0.0)

    assert (ids(batch), expired) == ([3, 1, 2, 4, 0], [])
    assert (len(queue), queue.lowest > 9) == (0, True)


async def test_a_batch_is_filled_from_the_highest_class_before_the_next() -> None:
    queue = queue_of((1.0, 0), (2.0, 1), (3.0, 1), (0.5, 0))

    assert ids(queue.take(3, now=0.0)[0]) == [1, 2, 3]
    assert (len(queue), queue.lowest) == (1, 0)


async def test_a_group_keeps_its_class_and_expired_queries_of_any_class_are_dropped() -> None:
    queue = BatchQueue()
    queue.put(query(0, 1.0, 0))
    queue.put_group([query(1, 9.0, 3), query(2, 9.0, 3)])
    queue.put(query(3, 0.5, 3))

    batch, expired = queue.take(10, now=1.0)

    assert (ids(batch), ids(expired)) == ([1, 2], [3, 0])


async def test_one_class_behaves_as_a_queue_without_priorities() -> None:
    queue = queue_of((3.0, 4), (1.0, 4), (2.0, 4))

    assert (queue.lowest, queue.ahead_of(4), queue.ahead_of(0)) == (4, 3, 3)
    assert ids(queue.take(10, now=0.0)[0]) == [1, 2, 0]


async def test_ahead_of_counts_only_the_query_class_and_above() -> None:
    queue = queue_of((1.0, 0), (1.0, 0), (1.0, 1), (1.0, 2))

    assert [queue.ahead_of(p) for p in (0, 1, 2, 3)] == [4, 2, 1, 0]


async def test_displace_gives_up_the_lowest_class_latest_deadline_query() -> None:
    queue = queue_of((5.0, 1), (2.0, 0), (7.0, 0), (3.0, 0), (9.0, 2))

    victim = queue.displace(2)

    assert victim is not None
    assert victim.query_id == 2
    assert (len(queue), queue.ahead_of(0)) == (4, 4)
    assert ids(queue.take(10, now=0.0)[0]) == [4, 0, 1, 3]


async def test_displace_never_takes_a_query_of_the_same_class_or_above() -> None:
    queue = queue_of((5.0, 1), (2.0, 2))

    assert queue.displace(1) is None
    assert queue.displace(2) is not None
    assert (queue.displace(2), len(queue), queue.lowest) == (None, 1, 2)


async def test_displacing_the_last_query_of_a_class_moves_lowest_up() -> None:
    queue = queue_of((5.0, 0), (2.0, 3))

    victim = queue.displace(3)

    assert victim is not None
    assert victim.query_id == 0
    assert (queue.lowest, queue.ahead_of(1), queue.earliest_deadline()) == (3, 1, 2.0)


async def test_drain_returns_every_class() -> None:
    queue = queue_of((5.0, 0), (2.0, 3), (1.0, 1))

    assert sorted(ids(queue.drain())) == [0, 1, 2]
    assert (len(queue), queue.earliest_deadline(), queue.ahead_of(0)) == (0, None, 0)
