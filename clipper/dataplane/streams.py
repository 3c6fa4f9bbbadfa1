"""Streamed queries: one input's pieces, as a streaming model yields them, then its answer.

A streamed query is queued and batched as any other (never cached nor shared); its
`ModelServing` tells it which replica and batch it went to, and the replica's channel hands
it each piece of its input as it arrives. Its deadline bounds the time to the FIRST piece
only: when none came by then, the stream ends and its answer is the app's default (the
worker is told to stop). After the first piece the stream runs until the model is done.
`cancel` (a client that went away) asks the worker to stop that input's generator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from clipper.dataplane.model_serving import ModelServing
from clipper.dataplane.prediction import Prediction
from clipper.rpc.server import WorkerChannel

__all__ = ["PieceStream"]

_END = object()  # the last event of a stream's queue


class PieceStream:
    """One streamed query. Iterate `pieces()` once, then read `answer()`."""

    def __init__(
        self,
        serving: ModelServing,
        query_id: int,
        deadline: float,
        future: asyncio.Future[Any],
        answer: Callable[[], Prediction],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.query_id = query_id
        self._serving = serving
        self._deadline = deadline
        self._future = future
        self._answer = answer
        self._clock = clock
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._where: tuple[WorkerChannel, int, int] | None = None  # channel, batch, index
        self.first_piece_missed = False
        serving.streams[query_id] = self.dispatched
        future.add_done_callback(self._done)

    def dispatched(self, channel: WorkerChannel, batch_id: int, index: int) -> None:
        """The query went out in batch `batch_id` at `index`: listen for its pieces."""
        self._where = (channel, batch_id, index)
        channel.listen(batch_id, index, self._events.put_nowait)

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._serving.streams.pop(self.query_id, None)
        self._events.put_nowait(_END)

    async def pieces(self) -> AsyncIterator[Any]:
        """Each piece as it arrives; ends when the model is done, when no piece came by the
        deadline (`first_piece_missed`), or when cancelled."""
        first = True
        while True:
            if first:
                try:
                    async with asyncio.timeout(max(0.0, self._deadline - self._clock())):
                        event = await self._events.get()
                except TimeoutError:
                    self.first_piece_missed = True
                    self.cancel()
                    return
                first = False
            else:
                event = await self._events.get()
            if event is _END:
                return
            yield event

    def answer(self) -> Prediction:
        """The query's answer: its pieces joined, or the default (no piece by the deadline,
        an error, a cancelled stream)."""
        return self._answer()

    def cancel(self) -> None:
        """Stop the stream: the worker stops the generator before its next step."""
        self._serving.streams.pop(self.query_id, None)
        if self._where is not None and not self._future.done():
            channel, batch_id, index = self._where
            channel.cancel(batch_id, index)
        self._events.put_nowait(_END)
