"""The last minutes of the metrics summary, kept by the server so the dashboard's charts are
full the moment the page opens.

A background task of the server (`sample_summaries`, supervised) takes a summary every
`dashboard_sample_interval_s` and adds it to a `SummaryHistory`: a ring buffer of at most
`capacity` samples, oldest first, the oldest dropped when it is full. Each sample is kept as
its JSON bytes, so memory is bounded by `capacity` times the size of one summary, which
holds entries only for the apps and model versions that have metrics. Sampling reads the
Prometheus registry in memory: no file I/O, nothing added to the query path.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson

__all__ = ["MAX_HISTORY_SAMPLES", "SummaryHistory", "history_capacity", "sample_summaries"]

MAX_HISTORY_SAMPLES = 1000
"""The most samples a history keeps, whatever its settings (a short interval keeps a
shorter span)."""


def history_capacity(history_s: float, interval_s: float) -> int:
    """Samples needed to span `history_s` at one per `interval_s` (the first sample counts),
    at least 2 and at most MAX_HISTORY_SAMPLES."""
    if not (interval_s > 0 and history_s >= 0):
        raise ValueError("the sample interval must be positive and the history not negative")
    return max(2, min(MAX_HISTORY_SAMPLES, math.ceil(history_s / interval_s) + 1))


class SummaryHistory:
    """A bounded ring buffer of summary samples, oldest first.

    Invariant: `len(self) <= capacity`; adding to a full history drops its oldest sample.
    """

    def __init__(self, capacity: int, interval_s: float) -> None:
        if capacity < 1:
            raise ValueError("a history holds at least one sample")
        self.capacity = capacity
        self.interval_s = interval_s
        self._samples: deque[bytes] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._samples)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The samples, decoded, oldest first."""
        return (orjson.loads(sample) for sample in self._samples)

    def add(self, summary: dict[str, Any]) -> None:
        """Keep `summary` (a JSON-serialisable dict) as the newest sample."""
        self._samples.append(orjson.dumps(summary))

    def size_bytes(self) -> int:
        """The bytes the samples' JSON takes."""
        return sum(len(sample) for sample in self._samples)

    def to_json(self) -> bytes:
        """`{"interval_s", "capacity", "samples": [summary, ...]}`, oldest first, written
        from the stored bytes without decoding them."""
        head = orjson.dumps({"interval_s": self.interval_s, "capacity": self.capacity})
        samples = b",".join(list(self._samples))  # a copy: taken at once on the loop
        return head[:-1] + b',"samples":[' + samples + b"]}"


async def sample_summaries(
    history: SummaryHistory, take: Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]]
) -> None:
    """Add `take()` (awaited, when it is a coroutine: several frontends' merged metrics) to
    `history` now and every `history.interval_s` after, until cancelled. The schedule is
    absolute (monotonic), so a slow sample does not shift the next ones."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        summary = take()
        history.add(await summary if inspect.isawaitable(summary) else summary)
        next_at += history.interval_s
        if next_at < loop.time():  # late (a paused loop): the next slot from now
            next_at = loop.time() + history.interval_s
        await asyncio.sleep(next_at - loop.time())
