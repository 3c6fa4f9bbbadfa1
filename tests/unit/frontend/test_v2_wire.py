"""Tensors on the worker RPC: arrays out of band, large frames, and their JSON rendering."""

from __future__ import annotations

import numpy as np
import orjson

from clipper.core.outputs import json_default, to_wire_value
from clipper.dataplane.cache import estimate_size_bytes
from clipper.rpc.protocol import BatchReply, FrameDecoder, Heartbeat, encode_batch, encode_message


def test_a_large_frame_fed_in_pieces_decodes_once_whole() -> None:
    array = np.arange(100_000, dtype=np.float64)
    stream = encode_message(BatchReply(1, [array])) + encode_message(Heartbeat())
    decoder = FrameDecoder()

    messages = []
    for start in range(0, len(stream), 4096):
        messages.extend(decoder.feed(stream[start : start + 4096]))

    assert [type(m) for m in messages] == [BatchReply, Heartbeat]
    reply = messages[0]
    assert isinstance(reply, BatchReply)
    np.testing.assert_array_equal(reply.outputs[0], array)
    assert not reply.outputs[0].flags.writeable


def test_a_large_batch_body_is_a_view_of_one_buffer() -> None:
    rows = [bytes(200_000), b"\x01" * 8]
    frame = encode_batch(3, "doubles", 10, rows)
    decoder = FrameDecoder()

    [batch] = decoder.feed(frame[:1000]) + decoder.feed(frame[1000:])

    assert bytes(batch.body) == b"".join(rows)  # type: ignore[union-attr]


def test_reply_outputs_keep_shape_dtype_and_bytes() -> None:
    outputs = [
        to_wire_value(o)
        for o in (np.float32(2.5), np.ones((2, 2), np.int8), b"\xff", [np.zeros(0)])
    ]

    [reply] = FrameDecoder().feed(encode_message(BatchReply(2, outputs)))

    assert isinstance(reply, BatchReply)
    assert reply.outputs[0] == 2.5
    assert reply.outputs[1].dtype == np.int8
    assert reply.outputs[1].shape == (2, 2)
    assert reply.outputs[2] == b"\xff"
    assert reply.outputs[3][0].shape == (0,)


def test_wire_values_render_as_clipper_json() -> None:
    value = {"a": to_wire_value(np.array([0.5], np.float16)), "b": to_wire_value(b"\x00")}

    rendered = orjson.dumps(value, default=json_default, option=orjson.OPT_SERIALIZE_NUMPY)

    assert orjson.loads(rendered) == {"a": [0.5], "b": "AA=="}


def test_array_outputs_count_their_bytes_in_the_cache() -> None:
    assert estimate_size_bytes(np.zeros(1000)) >= 8000
