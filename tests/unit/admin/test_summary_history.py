"""The dashboard's history of metrics summaries: a bounded ring buffer, and its sampler."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import orjson
import pytest

from clipper.admin.dashboard.history import (
    MAX_HISTORY_SAMPLES,
    SummaryHistory,
    history_capacity,
    sample_summaries,
)


def test_keeps_the_newest_samples_in_order_and_drops_the_oldest() -> None:
    history = SummaryHistory(capacity=3, interval_s=1.0)
    for second in range(5):
        history.add({"time": float(second), "apps": {}})
    assert len(history) == 3
    assert [sample["time"] for sample in history] == [2.0, 3.0, 4.0]


def test_json_holds_the_samples_oldest_first() -> None:
    history = SummaryHistory(capacity=2, interval_s=0.5)
    assert orjson.loads(history.to_json()) == {"interval_s": 0.5, "capacity": 2, "samples": []}
    for second in range(3):
        history.add({"time": second, "apps": {"a": {"requests": second}}})
    answer = orjson.loads(history.to_json())
    assert [sample["apps"]["a"]["requests"] for sample in answer["samples"]] == [1, 2]


def test_memory_is_bounded_by_capacity_times_a_sample() -> None:
    history = SummaryHistory(capacity=10, interval_s=1.0)
    sample = {"time": 0.0, "apps": {"a": {"requests": 1.0}}}
    for _ in range(1000):
        history.add(sample)
    assert history.size_bytes() == 10 * len(orjson.dumps(sample))


def test_capacity_spans_the_history_within_its_bounds() -> None:
    assert history_capacity(600.0, 3.0) == 201
    assert history_capacity(0.0, 3.0) == 2
    assert history_capacity(600.0, 0.01) == MAX_HISTORY_SAMPLES
    with pytest.raises(ValueError, match="positive"):
        history_capacity(600.0, 0.0)


async def test_sampler_adds_a_summary_every_interval_until_cancelled() -> None:
    history = SummaryHistory(capacity=4, interval_s=0.01)
    counter = itertools.count()
    fifth_taken = asyncio.Event()

    def take() -> dict[str, int]:
        number = next(counter)
        if number == 4:
            fifth_taken.set()
        return {"n": number}

    task = asyncio.create_task(sample_summaries(history, take))
    try:
        await asyncio.wait_for(fifth_taken.wait(), 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    numbers = [sample["n"] for sample in history]
    assert numbers[0] >= 1  # the first sample dropped
    assert numbers == list(range(numbers[0], numbers[0] + 4))  # ordered, none missing
