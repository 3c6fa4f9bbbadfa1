"""Streamed queries: one input's pieces, as a streaming model yields them, then its answer.

A streamed query is queued and batched as any other (never cached nor shared); its
`ModelServing` tells it which replica and batch it went to, and the replica's channel hands
it each piece of its input as it arrives. Its deadline bounds the time to the FIRST piece:
when none came by then, the stream ends and its answer is the app's default (the worker is
told to stop). After the first piece the stream runs until the model is done, or until a
`StreamLimits` bound: `timeout_s` (the whole stream, from its start) ends it with
`DeadlineExceeded` as its `error()`, `max_pieces` ends it after that many pieces with
`finish_reason` "length" and the pieces so far as its answer. A model that raises, or a
replica that dies, mid-stream ends it with that error (`ModelError`, `ReplicaCrashed`).
`cancel` (a client that went away, or asked to stop) asks the worker to stop that input's
generator before its next step; the stream then ends with `finish_reason` "cancelled" and
the pieces so far as its answer (a stream that has ended already is left as it is). A
stream that has had a piece is never retried on another replica (its pieces would repeat).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from clipper.batching.queue import PendingQuery
from clipper.core.exceptions import (
    ClipperError,
    DeadlineExceeded,
    InvalidInput,
    ModelError,
    ReplicaCrashed,
)
from clipper.dataplane.computations import failure_reason
from clipper.dataplane.model_serving import ModelServing
from clipper.dataplane.prediction import Prediction
from clipper.rpc.protocol import join_pieces
from clipper.rpc.server import WorkerChannel

__all__ = ["PieceStream", "StreamLimits"]

_END = object()  # the last event of a stream's queue
MAX_STREAM_TIMEOUT_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """What bounds a whole stream beyond its first piece (None: unbounded)."""

    timeout_s: float | None = None
    max_pieces: int | None = None

    @classmethod
    def parse(cls, timeout_s: Any, max_pieces: Any) -> StreamLimits:
        """Limits from a request's fields (`stream_timeout_s`, `max_pieces`); InvalidInput
        for values that are not a positive number and a positive integer."""
        if timeout_s is not None and (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, int | float)
            or not 0 < timeout_s <= MAX_STREAM_TIMEOUT_S
        ):
            bound = f"{MAX_STREAM_TIMEOUT_S:g}"
            raise InvalidInput(f"stream_timeout_s must be a number in (0, {bound}]")
        if max_pieces is not None and (
            isinstance(max_pieces, bool) or not isinstance(max_pieces, int) or max_pieces < 1
        ):
            raise InvalidInput("max_pieces must be a positive integer")
        return cls(None if timeout_s is None else float(timeout_s), max_pieces)


NO_LIMITS = StreamLimits()


class PieceStream:
    """One streamed query. Iterate `pieces()` once, then read `error()` or `answer()`."""

    def __init__(
        self,
        serving: ModelServing,
        query: PendingQuery,
        show_errors: bool,
        answer: Callable[[], Prediction],
        limits: StreamLimits = NO_LIMITS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.query_id = query.query_id
        self._serving = serving
        self._query = query
        self._show_errors = show_errors
        self._answer = answer
        self._limits = limits
        self._clock = clock
        started = clock()
        self._end_by = math.inf if limits.timeout_s is None else started + limits.timeout_s
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._where: tuple[WorkerChannel, int, int] | None = None  # channel, batch, index
        self._pieces: list[Any] = []
        self._limit_error: ClipperError | None = None
        self.first_piece_missed = False
        self.finish_reason = "stop"  # "length": max_pieces reached; "cancelled"
        self._ended = False
        serving.streams[query.query_id] = self.dispatched
        query.future.add_done_callback(self._done)

    @property
    def models(self) -> tuple[str, ...]:
        """The model version this stream runs on, as a reply's `models` names it."""
        return self._serving.models

    def dispatched(self, channel: WorkerChannel, batch_id: int, index: int) -> None:
        """The query went out in batch `batch_id` at `index`: listen for its pieces."""
        self._where = (channel, batch_id, index)
        channel.listen(batch_id, index, self._events.put_nowait)

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._ended = True
        self._serving.streams.pop(self.query_id, None)
        self._events.put_nowait(_END)

    async def pieces(self) -> AsyncIterator[Any]:
        """Each piece as it arrives; ends when the model is done or failed, when no piece
        came by the deadline (`first_piece_missed`), at a limit, or when cancelled."""
        while True:
            first = not self._pieces
            until = min(self._query.deadline, self._end_by) if first else self._end_by
            try:
                async with asyncio.timeout(max(0.0, until - self._clock())):
                    event = await self._events.get()
            except TimeoutError:
                self._timed_out(first)
                return
            if event is _END:
                self._ended = True
                return
            if first:
                self._query.attempts = 1  # never retried: its pieces would repeat
            self._pieces.append(event)
            yield event
            if self._limits.max_pieces is not None and len(self._pieces) >= self._limits.max_pieces:
                self.finish_reason = "length"
                self._stop()
                return

    def _timed_out(self, first: bool) -> None:
        if first and self._query.deadline <= self._end_by:
            self.first_piece_missed = True
        else:
            self._limit_error = DeadlineExceeded(
                f"the stream ran past its stream_timeout_s of {self._limits.timeout_s:g} s"
            )
        self._stop()

    def error(self) -> ClipperError | None:
        """Why the stream ended early: a limit, the model's error, its replica's crash (in
        the words of the reply's `default_explanation`); None when it did not (a missed
        first piece is not an error: its answer is the default)."""
        if self._limit_error is not None:
            return self._limit_error
        future = self._query.future
        if self.first_piece_missed or not future.done() or future.cancelled():
            return None
        error = future.exception()
        if error is None or not isinstance(error, ModelError | ReplicaCrashed):
            return None
        reason = failure_reason(self._serving, future, self.query_id, self._show_errors)
        return ModelError(reason) if isinstance(error, ModelError) else ReplicaCrashed(reason)

    def answer(self) -> Prediction:
        """The query's answer: its pieces joined (all of them, those up to `max_pieces`, or
        those before it was cancelled), or the default (no piece by the deadline, an error)."""
        if self.finish_reason != "stop":
            return Prediction(self.query_id, join_pieces(self._pieces), models=self.models)
        return self._answer()

    def cancel(self) -> None:
        """The client stops the stream: the worker stops the generator before its next
        step; nothing once the stream has ended."""
        if not self._ended:
            self.finish_reason = "cancelled"
            self._stop()

    def _stop(self) -> None:
        self._ended = True
        self._serving.streams.pop(self.query_id, None)
        if self._where is not None and not self._query.future.done():
            channel, batch_id, index = self._where
            channel.cancel(batch_id, index)
        self._events.put_nowait(_END)
