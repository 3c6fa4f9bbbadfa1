"""A step model's running batch in the worker: continuous (iteration-level) batching.

The worker keeps the sequences of every batch it was sent in one running batch and advances
them all with one `step` call at a time (see clipper.artifacts.stepping). Between two steps it
reads what the server sent without blocking: a new `batch` joins at once (its inputs are
started, and take part in the very next step), a `cancel` drops its sequences before the next
step (so a cancelled sequence runs at most the step it was in), a `shutdown` ends the run.
A sequence done leaves the batch after its step; a batch whose sequences have all left is
answered with its `end`. After each step one `step` message carries the step's size, its
latency and its pieces (the server sizes the batch from them). The run returns to the serve
loop once no sequence is left.

Invariants: every batch taken is answered exactly once (`end`, or `error` when its start or
a step it was in raised); the running batch holds at most the model's `max_sequences` (a
batch that does not fit waits, in order, until sequences leave); `finish` is called once for
every sequence started. A model with `continuous = False` runs request-level: a batch that
comes while one runs waits for the serve loop (the server, which sends such a replica one
batch at a time, does not send one then anyway).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import deque
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


@dataclass(slots=True)
class _Sequence:
    batch_id: int
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
        self._open: dict[int, _OpenBatch] = {}
        self._waiting: deque[Batch] = deque()  # batches that did not fit under the cap
        self.shutdown = False

    def run(self, first: Batch) -> None:
        """Serve `first` and whatever joins it, step by step, until no sequence is left."""
        self._join(first)
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

    def _join(self, batch: Batch) -> None:
        """Queue a batch behind those waiting, and start what fits under the cap."""
        self._waiting.append(batch)
        self._admit_waiting()

    def _admit_waiting(self) -> None:
        """Start waiting batches in order while they fit (one always, into an empty run)."""
        while self._waiting:
            batch = self._waiting[0]
            fits = len(self._sequences) + len(batch.lens) <= self._model.max_sequences
            if self._sequences and not fits:
                return
            self._waiting.popleft()
            self._start(batch)

    def _start(self, batch: Batch) -> None:
        """Start a batch's sequences: they take part in the next step."""
        deadline = time.monotonic() + batch.budget_us / 1e6
        inputs = decode_inputs(self._input_type, batch.lens, memoryview(batch.body))
        if time.monotonic() >= deadline:  # skipped, not computed (as a plain batch)
            self._send(StreamEnd(batch.id, len(inputs), list(range(len(inputs)))))
            return
        started: list[_Sequence] = []
        try:
            for index, value in enumerate(inputs):
                started.append(_Sequence(batch.id, index, self._model.start(value)))
        except Exception as exc:
            log.error("batch %d: the model's start raised\n%s", batch.id, traceback.format_exc())
            for sequence in started:
                self._finish(sequence)
            self._send(_error(batch.id, exc))
            return
        self._sequences.extend(started)
        self._open[batch.id] = _OpenBatch(len(inputs), len(inputs))

    def _leave(self, sequence: _Sequence, ended: list[int]) -> None:
        """A sequence is done or cancelled: finish it; its batch ends with its last one."""
        self._finish(sequence)
        opened = self._open.get(sequence.batch_id)
        if opened is None:
            return
        opened.running -= 1
        if opened.running == 0:
            ended.append(sequence.batch_id)

    def _send_ends(self, ended: list[int]) -> None:
        for batch_id in ended:
            opened = self._open.pop(batch_id)
            self._send(StreamEnd(batch_id, opened.count, opened.expired))

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
        ended: list[int] = []
        still = []
        for sequence, done in zip(sequences, finished, strict=True):
            if done:
                self._leave(sequence, ended)
            else:
                still.append(sequence)
        self._sequences = still
        self._send(Stepped(len(sequences), latency_us, pieces))
        self._send_ends(ended)

    def _fail_step(self, exc: Exception) -> None:
        """The model raised in a step: every batch in it ends with the error."""
        log.error("a step of %d sequences raised\n%s", len(self._sequences), traceback.format_exc())
        for sequence in self._sequences:
            self._finish(sequence)
        self._sequences = []
        for batch_id in list(self._open):
            del self._open[batch_id]
            self._send(_error(batch_id, exc))

    # -- messages -------------------------------------------------------------------------

    def _read_messages(self) -> None:
        """Act on what the server sent since the last step (never blocks)."""
        while (message := self._connection.poll()) is not None:
            if isinstance(message, Batch) and self._model.continuous:
                self._join(message)
            elif isinstance(message, Cancel):
                self._cancel(message)
            elif isinstance(message, Shutdown):
                self.shutdown = True
            elif not isinstance(message, Heartbeat):
                self._deferred.append(message)
        now = time.monotonic()
        if now - self._last_beat >= self._heartbeat_interval_s:
            self._send(Heartbeat())
            self._last_beat = now

    def _cancel(self, message: Cancel) -> None:
        """Drop the cancelled sequences before the next step (a batch not open: ignored)."""
        if message.id not in self._open:
            return
        ended: list[int] = []
        still = []
        for sequence in self._sequences:
            hit = sequence.batch_id == message.id and message.index in (-1, sequence.index)
            if hit:
                self._leave(sequence, ended)
            else:
                still.append(sequence)
        self._sequences = still
        self._send_ends(ended)

    def _send(self, message: Message) -> None:
        self._connection.send(encode_message(message))


class _WrongStepResults(Exception):
    """A step returned a result per sequence that is not (piece or None, done)."""


def _pieces_of(sequences: list[_Sequence], results: list[Any]) -> tuple[list[Any], list[bool]]:
    """The step's pieces as [batch id, index, piece] and whether each sequence is done."""
    pieces: list[Any] = []
    finished: list[bool] = []
    for sequence, result in zip(sequences, results, strict=True):
        try:
            piece, done = result
        except (TypeError, ValueError):
            message = f"a step result must be (piece, done), got {result!r}"
            raise _WrongStepResults(message) from None
        if piece is not None:
            wire = piece if isinstance(piece, str) else to_json_value(piece)
            pieces.append([sequence.batch_id, sequence.index, wire])
        finished.append(bool(done))
    return pieces, finished


def _error(batch_id: int, exc: Exception) -> BatchError:
    if isinstance(exc, _WrongStepResults):
        return BatchError(batch_id, "WrongNumberOfOutputs", str(exc))
    return BatchError(batch_id, type(exc).__name__, str(exc), traceback.format_exc())
