"""The worker's batch step: decode inputs, run the model, build the reply or error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from clipper.core.types import InputType
from clipper.rpc.protocol import Batch, BatchError, BatchReply, FrameDecoder
from clipper.worker.serve import _encode_reply, _run_batch

ONE_SECOND_US = 1_000_000


def row_sums(inputs: list[Any]) -> list[float]:
    return [float(row.sum()) for row in inputs]


class RecordingModel:
    """A predict function that records its inputs and answers with `answer(inputs)`."""

    def __init__(self, answer: Callable[[list[Any]], Any] = row_sums) -> None:
        self.answer = answer
        self.calls: list[list[Any]] = []

    def __call__(self, inputs: list[Any]) -> Any:
        self.calls.append(inputs)
        return self.answer(inputs)


def raise_value_error(inputs: list[Any]) -> Any:
    raise ValueError("boom")


def doubles_batch(*rows: list[float], budget_us: int = ONE_SECOND_US) -> Batch:
    buffers = [np.asarray(row, "<f8").tobytes() for row in rows]
    return Batch(7, "doubles", budget_us, [len(b) for b in buffers], b"".join(buffers))


def run(model: Any, batch: Batch | None = None) -> Any:
    return _run_batch(model, InputType.DOUBLES, batch or doubles_batch([1.0, 2.0], [3.0]))


def test_the_model_gets_the_decoded_inputs_and_its_outputs_are_the_reply() -> None:
    model = RecordingModel()

    reply = run(model)

    assert [x.tolist() for x in model.calls[0]] == [[1.0, 2.0], [3.0]]
    assert reply == BatchReply(7, [3.0, 3.0], [])


def test_outputs_are_converted_for_the_wire() -> None:
    reply = run(RecordingModel(lambda inputs: ["1", {"k": (np.int64(2), "x")}]))

    assert reply == BatchReply(7, [1, {"k": [2, "x"]}], [])


def test_numeric_array_and_bytes_outputs_travel_as_they_are() -> None:
    array = np.arange(3, dtype=np.float32)

    reply = run(RecordingModel(lambda inputs: [array, bytearray(b"\x00\xff")]))

    assert reply.outputs[0] is array
    assert reply.outputs[1] == b"\x00\xff"


def test_any_iterable_of_the_right_length_is_accepted() -> None:
    reply = run(RecordingModel(lambda inputs: (f"out-{i}" for i in range(len(inputs)))))

    assert reply.outputs == ["out-0", "out-1"]


def test_a_model_that_raises_gives_a_batch_error_naming_the_exception() -> None:
    error = run(raise_value_error)

    assert isinstance(error, BatchError)
    assert (error.id, error.error_type, error.message) == (7, "ValueError", "boom")
    assert "raise ValueError" in error.traceback


@pytest.mark.parametrize(
    ("answer", "got"), [(lambda inputs: [1], "1 outputs"), (lambda inputs: None, "None")]
)
def test_a_wrong_number_of_outputs_gives_a_clear_batch_error(answer: Any, got: str) -> None:
    error = run(RecordingModel(answer))

    assert error == BatchError(
        7, "WrongNumberOfOutputs", f"model returned {got} for a batch of 2 inputs"
    )


def test_an_output_that_cannot_be_rendered_gives_a_batch_error() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    error = run(RecordingModel(lambda inputs: [1, Unprintable()]))

    assert isinstance(error, BatchError)
    assert (error.error_type, error.message) == ("UnserialisableOutput", "RuntimeError: no str")


def test_a_batch_with_no_budget_left_is_all_expired_without_calling_the_model() -> None:
    model = RecordingModel()

    reply = run(model, doubles_batch([1.0], [2.0], [3.0], budget_us=0))

    assert reply == BatchReply(7, [], expired=[0, 1, 2])
    assert model.calls == []


@pytest.mark.parametrize(
    "output", [np.complex128(1 + 2j), np.array([1j]), np.datetime64("2024-01-01")], ids=repr
)
def test_every_result_of_run_batch_can_be_sent(output: Any) -> None:
    result = run(RecordingModel(lambda inputs: [output, output]))

    [sent] = FrameDecoder().feed(b"".join(_encode_reply(result)))

    assert isinstance(sent, (BatchReply, BatchError))
