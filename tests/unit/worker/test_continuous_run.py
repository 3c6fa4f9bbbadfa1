"""The worker's running batch (clipper.worker.continuous) over a scripted connection: what
arrives before each step, and every message it sends, decoded."""

from __future__ import annotations

from typing import Any

import numpy as np

from clipper.artifacts.stepping import StepFunction
from clipper.core.types import InputType
from clipper.rpc.protocol import (
    Batch,
    BatchError,
    Cancel,
    FrameDecoder,
    Message,
    Stepped,
    StreamEnd,
)
from clipper.worker.continuous import ContinuousRun


class Counting:
    """A step model: input [pieces]; records each step's size and every finished state."""

    max_sequences = 2

    def __init__(self, continuous: bool = True, broken: bool = False) -> None:
        self.continuous = continuous
        self.broken = broken
        self.sizes: list[int] = []
        self.finished: list[int] = []
        self.started = 0

    def start(self, value: Any) -> list[int]:
        self.started += 1
        return [self.started, int(value[0])]  # [id, pieces left]

    def step(self, states: list[list[int]]) -> list[Any]:
        self.sizes.append(len(states))
        if self.broken:
            return [("x", False)]  # one result, whatever the number of states
        for state in states:
            state[1] -= 1
        return [(f"{state[0]}", state[1] == 0) for state in states]

    def finish(self, state: list[int]) -> None:
        self.finished.append(state[0])


Scripted = Message | tuple[str, Message]
"""A message, or (the frontend it comes from, the message); the default frontend is "a"."""


class ScriptedConnection:
    """Hands out, at the n-th poll round (one per step), the messages scripted for it;
    records what it was sent, and to which frontend (`sent_to`)."""

    def __init__(self, script: dict[int, list[Scripted]]) -> None:
        self.script = script
        self.round = -1
        self.pending: list[tuple[str, Message]] = []
        self.decoder = FrameDecoder()
        self.sent: list[Message] = []
        self.sent_to: list[tuple[str, Message]] = []
        self.source = "a"

    def poll(self) -> Message | None:
        if not self.pending or self.pending[0][0] != self.source:
            return None  # `poll` reads only the current frontend
        return self.pending.pop(0)[1]

    def poll_any(self) -> Message | None:
        if not self.pending:
            return None
        self.source, message = self.pending.pop(0)
        return message

    def next_round(self) -> None:
        self.round += 1
        for each in self.script.get(self.round, []):
            self.pending.append(each if isinstance(each, tuple) else ("a", each))

    def send(self, frame: bytes | Message) -> None:
        assert isinstance(frame, bytes)
        self.send_to("a", frame)

    def send_to(self, source: object, frame: bytes) -> None:
        messages = self.decoder.feed(frame)
        self.sent.extend(messages)
        self.sent_to.extend((str(source), message) for message in messages)


def batch(batch_id: int, *pieces: int) -> Batch:
    buffers = [np.asarray([float(count)], "<f8").tobytes() for count in pieces]
    return Batch(batch_id, "doubles", 10_000_000, [len(b) for b in buffers], b"".join(buffers))


def run(
    model: Counting,
    first: Batch,
    script: dict[int, list[Scripted]],
    connection: ScriptedConnection | None = None,
) -> list[Message]:
    connection = connection or ScriptedConnection(script)
    deferred: list[Message] = []
    runner = ContinuousRun(connection, StepFunction(model), InputType.DOUBLES, 60.0, deferred)  # type: ignore[arg-type]
    real_read = runner._read_messages

    def read_round() -> None:
        connection.next_round()
        real_read()

    runner._read_messages = read_round  # type: ignore[method-assign]
    runner.run(first)
    return connection.sent + [("deferred", message) for message in deferred]  # type: ignore[misc]


def ends(sent: list[Any]) -> list[int]:
    return [message.id for message in sent if isinstance(message, StreamEnd)]


def test_batches_join_between_steps_up_to_the_cap_and_each_ends_once() -> None:
    model = Counting()
    sent = run(model, batch(1, 3), {0: [batch(2, 1), batch(3, 2)]})
    assert model.sizes == [2, 2, 2]  # batch 3 waited for batch 2's seat, then ran with 1
    assert ends(sent) == [2, 1, 3]
    assert sorted(model.finished) == [1, 2, 3]
    steps = [message for message in sent if isinstance(message, Stepped)]
    assert [step.size for step in steps] == model.sizes
    assert steps[0].pieces == [[1, 0, "1"], [2, 0, "2"]]


def test_a_cancelled_sequence_leaves_before_the_next_step() -> None:
    model = Counting()
    sent = run(model, batch(1, 5), {0: [batch(2, 5)], 1: [Cancel(1)]})
    assert model.sizes == [2, 1, 1, 1, 1]
    assert ends(sent) == [1, 2]
    assert model.finished == [1, 2]


def test_a_step_with_the_wrong_number_of_results_fails_every_batch_in_it() -> None:
    model = Counting(broken=True)
    sent = run(model, batch(1, 5), {0: [batch(2, 5)]})
    errors = [message for message in sent if isinstance(message, BatchError)]
    assert [(error.id, error.error_type) for error in errors] == [
        (1, "WrongNumberOfOutputs"),
        (2, "WrongNumberOfOutputs"),
    ]
    assert sorted(model.finished) == [1, 2]


def test_request_level_leaves_a_batch_that_comes_mid_run_to_the_serve_loop() -> None:
    model = Counting(continuous=False)
    late = batch(2, 1)
    sent = run(model, batch(1, 2), {0: [late]})
    assert model.sizes == [1, 1]
    assert ends(sent) == [1]
    assert sent[-1] == ("deferred", late)


def test_batches_of_two_frontends_share_steps_and_each_hears_only_its_own() -> None:
    """Both frontends number their batches from 1: a batch is its frontend and its id."""
    model = Counting()
    model.max_sequences = 4
    connection = ScriptedConnection({0: [("b", batch(1, 2))], 1: [("b", Cancel(1))]})
    run(model, batch(1, 3), {}, connection)
    assert model.sizes == [2, 1, 1]  # b's sequence joined the first step, cancelled after it
    by_frontend: dict[str, list[Message]] = {"a": [], "b": []}
    for source, message in connection.sent_to:
        by_frontend[source].append(message)
    a_steps = [m for m in by_frontend["a"] if isinstance(m, Stepped)]
    b_steps = [m for m in by_frontend["b"] if isinstance(m, Stepped)]
    assert [step.pieces for step in a_steps] == [[[1, 0, "1"]]] * 3
    assert [(step.size, step.pieces) for step in b_steps] == [(2, [[1, 0, "2"]])]
    assert [m.id for m in by_frontend["a"] if isinstance(m, StreamEnd)] == [1]
    assert [m.id for m in by_frontend["b"] if isinstance(m, StreamEnd)] == [1]
    assert sorted(model.finished) == [1, 2]
