"""Signatures, and tensors <-> Clipper's per-input buffers and answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from clipper.core.exceptions import InvalidInput, InvalidRequest, ModelError
from clipper.core.types import InputType
from clipper.frontend.oip.datatypes import Tensor
from clipper.frontend.oip.rows import input_buffers, output_tensors
from clipper.frontend.oip.signature import (
    default_signature,
    signature_for,
    validate_signature,
)
from clipper.rpc.protocol import decode_inputs, decode_tensor_row

SIGNATURE = {
    "inputs": [
        {"name": "a", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "t", "datatype": "BYTES", "shape": [-1]},
    ],
    "outputs": [
        {"name": "s", "datatype": "FP64", "shape": [-1]},
        {"name": "u", "datatype": "BYTES", "shape": [-1]},
    ],
}


def declared(value: dict[str, Any] = SIGNATURE, input_type: InputType = InputType.TENSORS) -> Any:
    return signature_for(input_type, validate_signature(value, input_type))


def tensor(name: str, array: Any, datatype: str) -> Tensor:
    data = np.asarray(array, dtype=np.dtype("<f8") if datatype == "FP64" else None)
    return Tensor(name, datatype, data.shape, data)


def test_doubles_rows_are_one_buffer_each() -> None:
    rows = np.arange(12, dtype=np.float64).reshape(4, 3)
    buffers = input_buffers(default_signature(InputType.DOUBLES), InputType.DOUBLES,
                            [Tensor("input", "FP64", (4, 3), rows)])  # fmt: skip

    decoded = decode_inputs(
        InputType.DOUBLES, [len(b) for b in buffers], memoryview(b"".join(buffers))
    )

    assert [row.tolist() for row in decoded] == rows.tolist()


def test_a_single_row_over_bytes_is_those_bytes_uncopied() -> None:
    raw = np.ones(8, np.float32).tobytes()
    array = np.frombuffer(raw, np.float32).reshape(1, 8)

    [buffer] = input_buffers(default_signature(InputType.FLOATS), InputType.FLOATS,
                             [Tensor("input", "FP32", (1, 8), array)])  # fmt: skip

    assert buffer is raw


def test_undeclared_numeric_inputs_cast_within_their_kind() -> None:
    ints = np.array([[1, 2]], dtype=np.int64)

    [buffer] = input_buffers(default_signature(InputType.DOUBLES), InputType.DOUBLES,
                             [Tensor("input", "INT64", (1, 2), ints)])  # fmt: skip

    assert np.frombuffer(buffer, np.float64).tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("input_type", "array", "datatype", "match"),
    [
        (InputType.INTEGERS, [[1.5]], "FP64", "the model takes INT32"),
        (InputType.INTEGERS, [[2**40]], "INT64", "outside INT32"),
        (InputType.STRINGS, [[1.0]], "FP64", "must be BYTES"),
    ],
)
def test_undeclared_inputs_that_do_not_fit_are_refused(
    input_type: InputType, array: Any, datatype: str, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        input_buffers(default_signature(input_type), input_type, [tensor("input", array, datatype)])


def test_an_undeclared_input_under_another_name_is_refused() -> None:
    ints = np.array([[1, 2]], dtype=np.int64)
    with pytest.raises(InvalidInput, match="unknown input 'x': the model's one input is 'input'"):
        input_buffers(default_signature(InputType.DOUBLES), InputType.DOUBLES,
                      [Tensor("x", "INT64", (1, 2), ints)])  # fmt: skip


def test_strings_are_one_input_per_element() -> None:
    texts = Tensor("input", "BYTES", (2,), [b"a", "ü".encode()])

    assert input_buffers(default_signature(InputType.STRINGS), InputType.STRINGS, [texts]) == [
        b"a", "ü".encode(),
    ]  # fmt: skip


def test_tensors_model_gets_a_dict_per_row() -> None:
    a = Tensor("a", "FP32", (2, 2), np.array([[1, 2], [3, 4]], np.float32))
    t = Tensor("t", "BYTES", (2,), [b"x", b"y"])

    buffers = input_buffers(declared(), InputType.TENSORS, [t, a])

    rows = [decode_tensor_row(buffer) for buffer in buffers]
    assert rows[1]["a"].tolist() == [3.0, 4.0]
    assert rows[1]["t"].item() == b"y"


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ([Tensor("a", "FP32", (1, 2), np.zeros((1, 2), np.float32))], "missing input 't'"),
        ([Tensor("a", "FP64", (1, 2), np.zeros((1, 2))), Tensor("t", "BYTES", (1,), [b""])],
         "datatype FP64"),
        ([Tensor("a", "FP32", (1, 3), np.zeros((1, 3), np.float32)),
          Tensor("t", "BYTES", (1,), [b""])], "shape"),
        ([Tensor("a", "FP32", (2, 2), np.zeros((2, 2), np.float32)),
          Tensor("t", "BYTES", (1,), [b""])], "same batch size"),
        ([Tensor("z", "FP32", (1,), np.zeros(1, np.float32))], "unexpected"),
    ],
)  # fmt: skip
def test_declared_signature_is_enforced(inputs: list[Tensor], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        input_buffers(declared(), InputType.TENSORS, inputs)


def test_several_outputs_from_dict_answers() -> None:
    answers = [{"s": 1.5, "u": "hi"}, {"s": 2, "u": b"yo"}]

    s, u = output_tensors(declared(), InputType.TENSORS, answers)

    assert (s.datatype, s.shape) == ("FP64", (2,))
    assert s.data.tolist() == [1.5, 2.0]  # type: ignore[union-attr]
    assert u.data == [b"hi", b"yo"]


def test_an_answer_missing_an_output_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="no output 'u'"):
        output_tensors(declared(), InputType.TENSORS, [{"s": 1.0}])


def test_declared_output_shape_is_enforced() -> None:
    with pytest.raises(ModelError, match="shape"):
        output_tensors(declared(), InputType.TENSORS, [{"s": [1.0, 2.0], "u": "x"}])


def test_undeclared_numbers_take_the_models_dtype() -> None:
    [out] = output_tensors(default_signature(InputType.FLOATS), InputType.FLOATS, [1.0, 2.0])

    assert (out.name, out.datatype, out.shape) == ("output", "FP32", (2,))


def test_undeclared_array_answer_is_not_copied() -> None:
    answer = np.arange(6, dtype=np.float32)

    [out] = output_tensors(default_signature(InputType.FLOATS), InputType.FLOATS, [answer])

    assert out.shape == (1, 6)
    assert isinstance(out.data, np.ndarray)
    assert np.shares_memory(out.data, answer)


def test_undeclared_floats_from_an_integers_model_stay_floats() -> None:
    [out] = output_tensors(default_signature(InputType.INTEGERS), InputType.INTEGERS, [0.5])

    assert out.datatype == "FP64"


def test_undeclared_structured_answers_become_json_bytes() -> None:
    [out] = output_tensors(default_signature(InputType.DOUBLES), InputType.DOUBLES,
                           [{"label": "cat"}, None])  # fmt: skip

    assert out.datatype == "BYTES"
    assert [orjson.loads(e) for e in out.data] == [{"label": "cat"}, None]  # type: ignore[union-attr]


def test_signature_is_stored_canonically() -> None:
    text = validate_signature(orjson.dumps(SIGNATURE).decode(), InputType.TENSORS)

    assert text is not None
    assert orjson.loads(text) == SIGNATURE


@pytest.mark.parametrize(
    ("value", "input_type", "match"),
    [
        (None, InputType.TENSORS, "needs a signature"),
        ({"inputs": [], "outputs": []}, InputType.TENSORS, "non-empty"),
        (SIGNATURE, InputType.DOUBLES, "takes one input"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}],
          "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]},
         InputType.DOUBLES, "datatype FP64"),
        ({"inputs": [{"name": "x", "datatype": "FP8", "shape": [-1]}],
          "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]},
         InputType.TENSORS, "not one of"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": []}],
          "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]},
         InputType.TENSORS, "shape"),
        ("{", InputType.TENSORS, "not valid JSON"),
    ],
)  # fmt: skip
def test_invalid_signatures_are_refused(value: Any, input_type: InputType, match: str) -> None:
    with pytest.raises(InvalidRequest, match=match):
        validate_signature(value, input_type)


def test_bytes_model_signature_takes_any_datatype() -> None:
    one = {"inputs": [{"name": "img", "datatype": "UINT8", "shape": [-1, 4]}],
           "outputs": [{"name": "y", "datatype": "BYTES", "shape": [-1]}]}  # fmt: skip

    assert validate_signature(one, InputType.BYTES) is not None


HALF = {
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}],
    "outputs": [{"name": "y", "datatype": "FP16", "shape": [-1]}],
}


def test_a_value_beyond_fp16_is_a_model_error_not_infinity() -> None:
    with pytest.raises(ModelError, match=r"beyond FP16's range \(largest magnitude 70000\)"):
        output_tensors(declared(HALF), InputType.TENSORS, [{"y": 70000.0}, {"y": 1.0}])


def test_fp16_keeps_values_in_range_and_the_models_own_infinities() -> None:
    [y] = output_tensors(declared(HALF), InputType.TENSORS, [{"y": 65504.0}, {"y": np.inf}])

    assert y.data.tolist() == [65504.0, np.inf]  # type: ignore[union-attr]


def test_undeclared_numbers_beyond_the_models_dtype_keep_their_own() -> None:
    [out] = output_tensors(default_signature(InputType.FLOATS), InputType.FLOATS, [1e300, 2.0])

    assert (out.datatype, out.data.tolist()) == ("FP64", [1e300, 2.0])  # type: ignore[union-attr]
