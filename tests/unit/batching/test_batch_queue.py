"""The earliest-deadline-first batch queue."""

from __future__ import annotations

import asyncio

from clipper.batching.queue import BatchQueue, PendingQuery


def query(query_id: int, deadline: float = 100.0) -> PendingQuery:
    future = asyncio.get_running_loop().create_future()
    return PendingQuery(query_id, b"%d" % query_id, deadline, future)


def ids(queries: list[PendingQuery]) -> list[int]:
    return [q.query_id for q in queries]


def queue_of(*deadlines: float) -> BatchQueue:
    """A queue holding one query per deadline, with ids 0, 1, 2, ... in that order."""
    queue = BatchQueue()
    for query_id, deadline in enumerate(deadlines):
        queue.put(query(query_id, deadline))
    return queue


async def test_take_returns_the_earliest_deadline_first() -> None:
    queue = queue_of(3.0, 1.0, 2.0)

    batch, expired = queue.take(10, now=0.0)

    assert (ids(batch), expired) == ([1, 2, 0], [])


async def test_equal_deadlines_keep_arrival_order() -> None:
    queue = queue_of(5.0, 5.0, 5.0)

    assert ids(queue.take(10, now=0.0)[0]) == [0, 1, 2]


async def test_take_respects_max_items_and_leaves_the_rest_queued() -> None:
    queue = queue_of(1.0, 2.0, 3.0, 4.0, 5.0)

    first, _ = queue.take(2, now=0.0)

    assert (ids(first), len(queue)) == ([0, 1], 3)
    assert ids(queue.take(2, now=0.0)[0]) == [2, 3]


async def test_expired_queries_are_dropped_and_returned_separately() -> None:
    queue = queue_of(1.0, 5.0, 2.0)

    batch, expired = queue.take(10, now=2.0)

    assert (ids(batch), sorted(ids(expired))) == ([1], [0, 2])
    assert (len(queue), queue.drain()) == (0, [])


async def test_already_resolved_queries_are_dropped_as_expired() -> None:
    cancelled, answered, live = query(0), query(1), query(2)
    cancelled.future.cancel()
    answered.future.set_result("late answer")
    queue = BatchQueue()
    queue.put_group([cancelled, answered, live])

    batch, expired = queue.take(10, now=0.0)

    assert (ids(batch), ids(expired)) == ([2], [0, 1])


async def test_expired_queries_do_not_use_up_the_batch() -> None:
    queue = queue_of(1.0, 1.0, 9.0, 9.0)

    batch, expired = queue.take(2, now=1.0)

    assert (ids(batch), ids(expired)) == ([2, 3], [0, 1])


async def test_a_group_is_taken_whole_when_it_fits() -> None:
    queue = BatchQueue()
    queue.put_group([query(0, 3.0), query(1, 1.0)])
    queue.put(query(2, 2.0))

    batch, _ = queue.take(3, now=0.0)

    assert ids(batch) == [0, 1, 2]


async def test_a_group_larger_than_a_batch_is_split() -> None:
    queue = BatchQueue()
    queue.put_group([query(i) for i in range(5)])

    assert ids(queue.take(3, now=0.0)[0]) == [0, 1, 2]
    assert ids(queue.take(3, now=0.0)[0]) == [3, 4]


async def test_a_group_that_does_not_fit_the_room_left_waits_for_the_next_batch() -> None:
    queue = BatchQueue()
    queue.put(query(0, 1.0))
    queue.put_group([query(1, 2.0), query(2, 2.0), query(3, 2.0)])

    assert ids(queue.take(3, now=0.0)[0]) == [0]
    assert ids(queue.take(3, now=0.0)[0]) == [1, 2, 3]


async def test_len_counts_inputs_and_earliest_deadline_tracks_the_head() -> None:
    queue = BatchQueue()
    queue.put_group([query(0, 4.0), query(1, 3.0)])
    queue.put(query(2, 7.0))

    assert (len(queue), queue.earliest_deadline()) == (3, 3.0)


async def test_an_empty_group_is_ignored() -> None:
    queue = BatchQueue()
    queue.put_group([])

    assert (len(queue), queue.earliest_deadline()) == (0, None)


async def test_drain_returns_everything_and_empties_the_queue() -> None:
    queue = queue_of(2.0, 1.0)
    queue.put_group([query(7), query(8)])

    drained = queue.drain()

    assert sorted(ids(drained)) == [0, 1, 7, 8]
    assert (len(queue), queue.take(10, now=0.0)) == (0, ([], []))
