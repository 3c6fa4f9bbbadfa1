"""The worker RPC protocol: frames <-> messages, batch bodies <-> inputs, reply arrays."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pytest

from clipper.core.exceptions import RpcError
from clipper.core.types import InputType
from clipper.rpc.protocol import (
    FRAME_PREFIX,
    Batch,
    BatchError,
    BatchReply,
    FrameDecoder,
    Heartbeat,
    Message,
    Refused,
    Register,
    Shutdown,
    Welcome,
    decode_inputs,
    decode_tensor_row,
    encode_batch,
    encode_message,
    encode_tensor_row,
)

MESSAGES: list[Message] = [
    Register("m", "1", 0, "doubles", pid=123),
    Welcome(),
    Refused("replica 0 of m:1 is already connected"),
    BatchReply(3, [1, "a", [1.5, 2.5], {"k": None}], expired=[2]),
    BatchError(4, "ValueError", "boom", "Traceback ..."),
    Heartbeat(),
    Shutdown(),
]


def raw_frame(header: Any, body: bytes = b"") -> bytes:
    """A frame built by hand, to send what `encode_message` never would."""
    packed: bytes = msgpack.packb(header, use_bin_type=True)
    return FRAME_PREFIX.pack(len(packed), len(body)) + packed + body


def decode_one(frame: bytes) -> Message:
    [message] = FrameDecoder().feed(frame)
    return message


def batch_inputs(input_type: InputType, buffers: list[bytes]) -> list[Any]:
    """Encode buffers as a batch frame, decode the frame, then decode its inputs."""
    batch = decode_one(encode_batch(1, input_type.value, 1000, buffers))
    assert isinstance(batch, Batch)
    return decode_inputs(input_type, batch.lens, memoryview(batch.body))


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_message_round_trips(message: Message) -> None:
    assert decode_one(encode_message(message)) == message


def test_batch_round_trips_through_encode_batch() -> None:
    message = decode_one(encode_batch(7, "bytes", 2500, [b"ab", b"", b"cde"]))

    assert message == Batch(7, "bytes", 2500, [2, 0, 3], b"abcde")


def test_batch_round_trips_through_encode_message() -> None:
    batch = Batch(7, "doubles", 2500, [8, 8], bytes(16))

    assert decode_one(encode_message(batch)) == batch


def test_feeding_byte_by_byte_yields_every_message_in_order() -> None:
    stream = b"".join(encode_message(message) for message in MESSAGES)
    decoder = FrameDecoder()

    decoded = [message for i in range(len(stream)) for message in decoder.feed(stream[i : i + 1])]

    assert decoded == MESSAGES


def test_several_frames_in_one_chunk_are_all_decoded() -> None:
    chunk = encode_batch(1, "strings", 10, [b"x"]) + b"".join(map(encode_message, MESSAGES))

    decoded = FrameDecoder().feed(chunk)

    assert decoded == [Batch(1, "strings", 10, [1], b"x"), *MESSAGES]


def test_frame_split_anywhere_across_two_chunks_decodes_once() -> None:
    frame = encode_batch(5, "bytes", 99, [b"hello", b"world"])
    expected = Batch(5, "bytes", 99, [5, 5], b"helloworld")

    for split in range(1, len(frame)):
        decoder = FrameDecoder()
        assert decoder.feed(frame[:split]) == []
        assert decoder.feed(frame[split:]) == [expected]


def test_a_partial_next_frame_waits_for_the_rest() -> None:
    first, second = encode_message(Heartbeat()), encode_message(Refused("no"))
    decoder = FrameDecoder()

    assert decoder.feed(first + second[:3]) == [Heartbeat()]
    assert decoder.feed(second[3:]) == [Refused("no")]


@pytest.mark.parametrize(
    ("input_type", "values", "dtype"),
    [
        (InputType.INTEGERS, [1, -2, 2**31 - 1], np.dtype("<i4")),
        (InputType.FLOATS, [1.5, -0.25], np.dtype("<f4")),
        (InputType.DOUBLES, [1e300, -3.125], np.dtype("<f8")),
    ],
)
def test_numeric_inputs_come_back_equal_with_their_dtype(
    input_type: InputType, values: list[float], dtype: np.dtype[Any]
) -> None:
    arrays = [np.asarray(values, dtype), np.asarray(values[::-1], dtype)]

    inputs = batch_inputs(input_type, [array.tobytes() for array in arrays])

    assert [item.dtype for item in inputs] == [dtype, dtype]
    assert all(np.array_equal(got, want) for got, want in zip(inputs, arrays, strict=True))


def test_string_inputs_come_back_as_str() -> None:
    strings = ["héllo", "", "x"]

    assert batch_inputs(InputType.STRINGS, [s.encode() for s in strings]) == strings


def test_bytes_inputs_come_back_as_bytes() -> None:
    inputs = batch_inputs(InputType.BYTES, [b"\x00\xff", b"abc"])

    assert inputs == [b"\x00\xff", b"abc"]
    assert all(type(item) is bytes for item in inputs)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ({"t": "bogus"}, "unknown message type 'bogus'"),
        ({"id": 1}, "unknown message type None"),
        ({"t": 5}, "unknown message type 5"),
        ({"t": "refused"}, "malformed 'refused' message"),
        ({"t": "heartbeat", "extra": 1}, "malformed 'heartbeat' message"),
        ({"t": "reply", "outputs": []}, "malformed 'reply' message"),
        ([1, 2], "frame header is not a map"),
    ],
)
def test_malformed_headers_raise_rpc_error(header: Any, match: str) -> None:
    with pytest.raises(RpcError, match=match):
        FrameDecoder().feed(raw_frame(header))


def test_an_oversized_frame_is_refused_before_it_is_buffered() -> None:
    with pytest.raises(RpcError, match="too large"):
        FrameDecoder().feed(FRAME_PREFIX.pack(1 << 31, 1))


@pytest.mark.parametrize("lens", [[2, 2], [2, 4], [], [10]])
def test_lens_not_adding_up_to_the_body_raise_rpc_error(lens: list[int]) -> None:
    with pytest.raises(RpcError, match="batch body has 5 bytes"):
        decode_inputs(InputType.BYTES, lens, memoryview(b"abcde"))


def test_numeric_lens_not_matching_the_body_raise_rpc_error() -> None:
    with pytest.raises(RpcError):
        decode_inputs(InputType.DOUBLES, [8, 8], memoryview(bytes(12)))


def test_a_string_input_that_is_not_utf8_raises_rpc_error() -> None:
    with pytest.raises(RpcError):
        decode_inputs(InputType.STRINGS, [2], memoryview(b"\xff\xfe"))


@pytest.mark.parametrize("packed", [b"\xc1", msgpack.packb({"t": "heartbeat"}) + b"\x00"])
def test_a_header_that_is_not_valid_msgpack_raises_rpc_error(packed: bytes) -> None:
    with pytest.raises(RpcError, match="malformed frame header"):
        FrameDecoder().feed(FRAME_PREFIX.pack(len(packed), 0) + packed)


def test_an_unknown_ext_type_in_a_header_raises_rpc_error() -> None:
    header = {"t": "reply", "id": 1, "outputs": [msgpack.ExtType(9, b"")], "expired": []}

    with pytest.raises(RpcError, match="unknown ext type 9"):
        FrameDecoder().feed(raw_frame(header))


def test_an_array_reference_outside_the_body_raises_rpc_error() -> None:
    reference = msgpack.ExtType(1, msgpack.packb(["<f8", [2], 0, 16]))
    header = {"t": "reply", "id": 1, "outputs": [reference], "expired": []}

    with pytest.raises(RpcError, match="outside the frame body"):
        FrameDecoder().feed(raw_frame(header, body=bytes(8)))


@pytest.mark.parametrize(
    "arrays",
    [[np.arange(3, dtype="<i4")], [np.ones((2, 2)), np.array([True, False])]],
    ids=["one", "several"],
)
def test_numpy_outputs_in_a_reply_round_trip_with_dtype_and_shape(arrays: list[Any]) -> None:
    reply = decode_one(encode_message(BatchReply(1, [*arrays, "x", b"\x00"])))

    assert isinstance(reply, BatchReply)
    assert reply.outputs[-2:] == ["x", b"\x00"]
    for got, want in zip(reply.outputs, arrays, strict=False):
        assert (got.dtype, got.shape) == (want.dtype, want.shape)
        assert np.array_equal(got, want)


def test_a_single_numpy_output_decodes_read_only() -> None:
    reply = decode_one(encode_message(BatchReply(1, [np.arange(3)])))

    assert isinstance(reply, BatchReply)
    assert not reply.outputs[0].flags.writeable


def test_several_numpy_outputs_decode_read_only() -> None:
    reply = decode_one(encode_message(BatchReply(1, [np.arange(3), np.arange(2)])))

    assert isinstance(reply, BatchReply)
    assert not any(output.flags.writeable for output in reply.outputs)


def test_a_reply_output_that_cannot_travel_is_refused_when_encoding() -> None:
    with pytest.raises(TypeError, match="cannot send a set"):
        encode_message(BatchReply(1, [{1, 2}]))


def test_tensor_rows_come_back_as_named_arrays() -> None:
    x = np.array([[1.0, 2.0]], np.float32)

    [decoded] = batch_inputs(InputType.TENSORS, [encode_tensor_row({"x": x, "s": [b"a", b"bc"]})])

    assert decoded["x"].dtype == np.float32
    assert np.array_equal(decoded["x"], x)
    assert decoded["s"].tolist() == [b"a", b"bc"]


def test_a_malformed_tensor_row_raises_rpc_error() -> None:
    with pytest.raises(RpcError, match="malformed tensors input"):
        decode_tensor_row(b"\x01\x02")


def test_a_large_frame_received_straight_into_its_buffer_decodes_like_a_fed_one() -> None:
    body = np.arange(200_000, dtype=np.float32)
    frame = encode_message(BatchReply(7, [body]))
    decoder = FrameDecoder()

    assert decoder.receive_view() is None
    assert decoder.feed(frame[:1000]) == []
    messages: list[Any] = []
    while (view := decoder.receive_view()) is not None:
        size = min(len(view), 65_536)
        view[:size] = frame[len(frame) - len(view) : len(frame) - len(view) + size]
        messages.extend(decoder.received(size))

    [reply] = messages
    assert isinstance(reply, BatchReply)
    assert reply.id == 7
    np.testing.assert_array_equal(reply.outputs[0], body)
    assert decoder.receive_view() is None
    assert decoder.feed(encode_message(Heartbeat())) == [Heartbeat()]


def test_stream_messages_round_trip() -> None:
    from clipper.rpc.protocol import Cancel, StreamEnd, StreamPiece, join_pieces

    messages: list[Any] = [StreamPiece(3, 0, "hel"), StreamEnd(3, 2, [1]), Cancel(3, 0), Cancel(4)]
    decoder = FrameDecoder()
    assert decoder.feed(b"".join(encode_message(m) for m in messages)) == messages
    assert join_pieces(["a", "b"]) == "ab"
    assert join_pieces([1, 2]) == [1, 2]


def test_a_register_says_whether_its_model_streams() -> None:
    streaming = Register("m", "1", 0, "strings", pid=1, streams=True)
    assert decode_one(encode_message(streaming)) == streaming
    version_2 = raw_frame({"t": "register", "model": "m", "version": "1", "replica": 0,
                           "input_type": "strings", "pid": 1, "protocol": 2})  # fmt: skip
    decoded = decode_one(version_2)
    assert isinstance(decoded, Register)
    assert decoded.streams is False  # a version-2 worker never streams


def test_continuous_batching_messages_round_trip() -> None:
    from clipper.rpc.protocol import Register, Stepped

    messages: list[Any] = [
        Register("m", "1", 0, "strings", 7, max_sequences=32),
        Stepped(2, 1500, [[3, 0, "a"], [4, 0, {"token": 5}]]),
        Stepped(1, 20),
    ]
    decoder = FrameDecoder()
    assert decoder.feed(b"".join(encode_message(m) for m in messages)) == messages
    assert Register("m", "1", 0, "strings", 7).max_sequences == 0  # a plain worker's
