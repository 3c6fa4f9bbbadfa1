"""A step model's running batch in the worker: continuous (iteration-level) batching.

The worker keeps the sequences of every batch it was sent in one running batch and advances
them all with one `step` call at a time (see clipper.artifacts.stepping). Between two steps
it reads what the server sent without blocking (every frontend's connection, with several
query frontends: their batches share the steps, see clipper.worker.fanout): a new `batch`
joins at once (its inputs are started, and take part in the very next step), a `cancel`
drops its sequences before the next step (so a cancelled sequence runs at most the step it
was in), a `shutdown` ends the run. A sequence done leaves the batch after its step; a
batch whose sequences have all left is answered with its `end`. After each step one `step`
message carries the step's size, its latency and its pieces (the server sizes the batch
from them): one per frontend with sequences in the step, holding that frontend's pieces and
the whole step's size. The run returns to the serve loop once no sequence is left.

Invariants: every batch taken is answered exactly once, on the connection it came from
(`end`, or `error` when its start or a step it was in raised); a batch is known by its
connection and its id (each frontend numbers its own batches); the running batch holds at
most the model's `max_sequences` (a batch that does not fit waits, in order, until
sequences leave); `finish` is called once for every sequence started. A model with
`continuous = False` runs request-level: a batch that comes while one runs waits for the
serve loop (the server, which sends such a replica one batch at a time, does not send one
then anyway).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from clipper.artifacts.stepping import StepFunction
from clipper.core.outputs import to_json_value
from clipper.core.types import InputType
from clipper.rpc.protocol import (
    Batch,
    BatchError,
    Cancel,
    Heartbeat,
    Message,
    Shutdown,
    Stepped,
    StreamEnd,
    decode_inputs,
    encode_message,
)
from clipper.worker.connection import RpcConnection

__all__ = ["ContinuousRun"]

log = logging.getLogger("clipper.worker")


_Key = tuple[Hashable, int]
"""A batch in the run: (the connection it came from, its id there)."""


@dataclass(slots=True)
class _Sequence:
    key: _Key
    index: int
    state: Any


@dataclass(slots=True)
class _OpenBatch:
    """A batch some of whose sequences still run."""

    count: int
    running: int
    expired: list[int] = field(default_factory=list)


class ContinuousRun:
    """Runs the running batch until it is empty; `shutdown` is True when told to stop."""

    def __init__(
        self,
        connection: RpcConnection,
        model: StepFunction,
        input_type: InputType,
        heartbeat_interval_s: float,
        deferred: list[Message],
    ) -> None:
        self._connection = connection
        self._model = model
        self._input_type = input_type
        self._heartbeat_interval_s = heartbeat_interval_s
        self._deferred = deferred
        self._last_beat = time.monotonic()
        self._sequences: list[_Sequence] = []
        self._open: dict[_Key, _OpenBatch] = {}
        self._waiting: deque[tuple[Hashable, Batch]] = deque()  # did not fit under the cap
        self.shutdown = False

    def run(self, first: Batch) -> None:
        """Serve `first` and whatever joins it, step by step, until no sequence is left."""
        self._join(first, self._connection.source)
        while True:
            self._read_messages()
            if self.shutdown:
                break
            self._admit_waiting()
            if not self._sequences:
                break
            self._step()
        self._abandon()

    # -- joining and leaving -------------------------------------------------------------

    def _join(self, batch: Batch, source: Hashable) -> None:
        """Queue a batch behind those waiting, and start what fits under the cap."""
        self._waiting.append((source, batch))
        self._admit_waiting()

    def _admit_waiting(self) -> None:
        """Start waiting batches in order while they fit (one always, into an empty run)."""
        while self._waiting:
            source, batch = self._waiting[0]
            fits = len(self._sequences) + len(batch.lens) <= self._model.max_sequences
            if self._sequences and not fits:
                return
            self._waiting.popleft()
            self._start((source, batch.id), batch)

    def _start(self, key: _Key, batch: Batch) -> None:
        """Start a batch's sequences: they take part in the next step."""
        deadline = time.monotonic() + batch.budget_us / 1e6
        inputs = decode_inputs(self._input_type, batch.lens, memoryview(batch.body))
        if time.monotonic() >= deadline:  # skipped, not computed (as a plain batch)
            self._send(key, StreamEnd(batch.id, len(inputs), list(range(len(inputs)))))
            return
        started: list[_Sequence] = []
        try:
            for index, value in enumerate(inputs):
                started.append(_Sequence(key, index, self._model.start(value)))
        except Exception as exc:
            log.error("batch %d: the model's start raised\n%s", batch.id, traceback.format_exc())
            for sequence in started:
                self._finish(sequence)
            self._send(key, _error(batch.id, exc))
            return
        self._sequences.extend(started)
        self._open[key] = _OpenBatch(len(inputs), len(inputs))

    def _leave(self, sequence: _Sequence, ended: list[_Key]) -> None:
        """A sequence is done or cancelled: finish it; its batch ends with its last one."""
        self._finish(sequence)
        opened = self._open.get(sequence.key)
        if opened is None:
            return
        opened.running -= 1
        if opened.running == 0:
            ended.append(sequence.key)

    def _send_ends(self, ended: list[_Key]) -> None:
        for key in ended:
            opened = self._open.pop(key)
            self._send(key, StreamEnd(key[1], opened.count, opened.expired))

    def _finish(self, sequence: _Sequence) -> None:
        finish = self._model.finish
        if finish is None:
            return
        try:
            finish(sequence.state)
        except Exception:
            log.exception("a step model's finish raised")

    def _abandon(self) -> None:
        """Told to stop mid-run: finish every sequence; the server fails their batches when
        the connection closes."""
        for sequence in self._sequences:
            self._finish(sequence)
        self._sequences.clear()
        self._open.clear()
        self._waiting.clear()

    # -- one step -------------------------------------------------------------------------

    def _step(self) -> None:
        """Advance every running sequence by one step; send its pieces, then the ends."""
        sequences = self._sequences
        started = time.perf_counter()
        try:
            results = list(self._model.step([sequence.state for sequence in sequences]))
            if len(results) != len(sequences):
                raise _WrongStepResults(
                    f"step returned {len(results)} results for {len(sequences)} sequences"
                )
            pieces, finished = _pieces_of(sequences, results)
        except Exception as exc:
            self._fail_step(exc)
            return
        latency_us = int((time.perf_counter() - started) * 1e6)
        ended: list[_Key] = []
        still = []
        for sequence, done in zip(sequences, finished, strict=True):
            if done:
                self._leave(sequence, ended)
            else:
                still.append(sequence)
        self._sequences = still
        for source, theirs in pieces.items():
            self._connection.send_to(source, encode_message(Stepped(len(sequences), latency_us,
                                                                    theirs)))  # fmt: skip
        self._send_ends(ended)

    def _fail_step(self, exc: Exception) -> None:
        """The model raised in a step: every batch in it ends with the error."""
        log.error("a step of %d sequences raised\n%s", len(self._sequences), traceback.format_exc())
        for sequence in self._sequences:
            self._finish(sequence)
        self._sequences = []
        for key in list(self._open):
            del self._open[key]
            self._send(key, _error(key[1], exc))

    # -- messages -------------------------------------------------------------------------

    def _read_messages(self) -> None:
        """Act on what the server sent since the last step (never blocks)."""
        connection = self._connection
        read = connection.poll_any if self._model.continuous else connection.poll
        while (message := read()) is not None:
            if isinstance(message, Batch) and self._model.continuous:
                self._join(message, connection.source)
            elif isinstance(message, Cancel):
                self._cancel((connection.source, message.id), message.index)
            elif isinstance(message, Shutdown):
                self.shutdown = True
            elif not isinstance(message, Heartbeat):
                self._deferred.append(message)
        now = time.monotonic()
        if now - self._last_beat >= self._heartbeat_interval_s:
            connection.send(Heartbeat())
            self._last_beat = now

    def _cancel(self, key: _Key, index: int) -> None:
        """Drop the cancelled sequences before the next step (a batch not open: ignored)."""
        if key not in self._open:
            return
        ended: list[_Key] = []
        still = []
        for sequence in self._sequences:
            hit = sequence.key == key and index in (-1, sequence.index)
            if hit:
                self._leave(sequence, ended)
            else:
                still.append(sequence)
        self._sequences = still
        self._send_ends(ended)

    def _send(self, key: _Key, message: Message) -> None:
        """A message for one batch, on the connection it came from."""
        self._connection.send_to(key[0], encode_message(message))


class _WrongStepResults(Exception):
    """A step returned a result per sequence that is not (piece or None, done)."""


def _pieces_of(
    sequences: list[_Sequence], results: list[Any]
) -> tuple[dict[Hashable, list[Any]], list[bool]]:
    """The step's pieces as [batch id, index, piece] per connection (one entry for every
    connection with a sequence in the step), and whether each sequence is done."""
    pieces: dict[Hashable, list[Any]] = {sequence.key[0]: [] for sequence in sequences}
    finished: list[bool] = []
    for sequence, result in zip(sequences, results, strict=True):
        try:
            piece, done = result
        except (TypeError, ValueError):
            message = f"a step result must be (piece, done), got {result!r}"
            raise _WrongStepResults(message) from None
        if piece is not None:
            wire = piece if isinstance(piece, str) else to_json_value(piece)
            pieces[sequence.key[0]].append([sequence.key[1], sequence.index, wire])
        finished.append(bool(done))
    return pieces, finished


def _error(batch_id: int, exc: Exception) -> BatchError:
    if isinstance(exc, _WrongStepResults):
        return BatchError(batch_id, "WrongNumberOfOutputs", str(exc))
    return BatchError(batch_id, type(exc).__name__, str(exc), traceback.format_exc())
