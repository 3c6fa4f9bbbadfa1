"""A streaming model's batch in the worker: each input's pieces sent as they come.

The model is called once per live input (`StreamFunction`, a list of one input) and the
inputs' iterators are stepped in turn, one piece each, so every input of a batch gets its
first piece after one step of each input before it. Between two steps the worker reads what
the server sent without blocking: a `cancel` closes that input's iterator before its next
step (so a cancelled model runs at most the step it was in), a `shutdown` ends the batch,
and a `batch` waits in `deferred` for the serve loop. Heartbeats go out between steps.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from clipper.core.outputs import to_json_value
from clipper.core.types import InputType
from clipper.rpc.protocol import (
    Batch,
    BatchError,
    Cancel,
    Heartbeat,
    Message,
    Shutdown,
    StreamEnd,
    StreamPiece,
    decode_inputs,
    encode_message,
)
from clipper.worker.connection import RpcConnection

__all__ = ["StreamRun", "is_streaming"]

log = logging.getLogger("clipper.worker")


def is_streaming(predict: Callable[[list[Any]], Any]) -> bool:
    """Whether a loaded model streams (see clipper.artifacts._loading.StreamFunction)."""
    return getattr(predict, "streaming", False) is True


class StreamRun:
    """Streams one batch; `shutdown` is True when the server said stop meanwhile."""

    def __init__(
        self,
        connection: RpcConnection,
        heartbeat_interval_s: float,
        deferred: list[Message],
    ) -> None:
        self._connection = connection
        self._heartbeat_interval_s = heartbeat_interval_s
        self._deferred = deferred
        self._last_beat = time.monotonic()
        self.shutdown = False

    def run(self, stream: Callable[[list[Any]], Any], input_type: InputType, batch: Batch) -> None:
        """Send the batch's pieces, then its `end` (or an `error`, which ends it too)."""
        local_deadline = time.monotonic() + batch.budget_us / 1e6
        inputs = decode_inputs(input_type, batch.lens, memoryview(batch.body))
        if time.monotonic() >= local_deadline:  # skipped, not computed (as a plain batch)
            self._send(StreamEnd(batch.id, len(inputs), list(range(len(inputs)))))
            return
        live: dict[int, Iterator[Any]] = {}
        try:
            for index, value in enumerate(inputs):
                live[index] = stream([value])
            self._step_all(batch.id, live)
        except Exception as exc:
            log.error("batch %d: model raised\n%s", batch.id, traceback.format_exc())
            self._send(BatchError(batch.id, type(exc).__name__, str(exc), traceback.format_exc()))
            return
        finally:
            for pieces in live.values():
                _close(pieces)
        self._send(StreamEnd(batch.id, len(inputs)))

    def _step_all(self, batch_id: int, live: dict[int, Iterator[Any]]) -> None:
        """Step each live iterator in turn until all are done, cancelled or told to stop."""
        while live and not self.shutdown:
            for index in list(live):
                self._read_messages(batch_id, live)
                pieces = live.get(index)
                if pieces is None or self.shutdown:
                    continue
                try:
                    piece = next(pieces)
                except StopIteration:
                    del live[index]
                    continue
                self._send(StreamPiece(batch_id, index, _wire_piece(piece)))

    def _read_messages(self, batch_id: int, live: dict[int, Iterator[Any]]) -> None:
        """Act on what the server sent since the last step (never blocks)."""
        while (message := self._connection.poll()) is not None:
            if isinstance(message, Cancel) and message.id == batch_id:
                for index in list(live) if message.index == -1 else [message.index]:
                    pieces = live.pop(index, None)
                    if pieces is not None:
                        _close(pieces)
            elif isinstance(message, Shutdown):
                self.shutdown = True
            elif not isinstance(message, (Cancel, Heartbeat)):
                self._deferred.append(message)
        now = time.monotonic()
        if now - self._last_beat >= self._heartbeat_interval_s:
            self._send(Heartbeat())
            self._last_beat = now

    def _send(self, message: Message) -> None:
        self._connection.send(encode_message(message))


def _wire_piece(piece: Any) -> Any:
    """A piece as the RPC carries it: text as it is, anything else JSON-compatible."""
    return piece if isinstance(piece, str) else to_json_value(piece)


def _close(pieces: Iterator[Any]) -> None:
    """Stop a model's generator (its `finally` runs now); errors in it are logged."""
    close = getattr(pieces, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        log.exception("closing a streaming model's generator failed")
