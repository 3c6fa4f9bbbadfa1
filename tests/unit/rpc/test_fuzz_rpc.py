"""Property tests of the worker RPC's frame parser: arbitrary bytes and well-framed but
wrong headers and bodies only ever raise RpcError, on the server's side and the worker's."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipper.core.exceptions import RpcError
from clipper.core.types import InputType
from clipper.rpc.protocol import (
    FRAME_PREFIX,
    FrameDecoder,
    decode_inputs,
    decode_tensor_row,
    encode_message,
)
from clipper.rpc.protocol import Register as RegisterMessage

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESSAGE_TYPES = ["register", "welcome", "refused", "batch", "reply", "error", "heartbeat",
                 "shutdown", "nope"]  # fmt: skip
FIELDS = ["id", "input_type", "budget_us", "lens", "outputs", "expired", "error_type",
          "message", "traceback", "protocol", "model", "version", "replica", "pid", "reason",
          "secret"]  # fmt: skip

leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10)
)
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
# Array references as a reply's header carries them: ext type 1 [dtype, shape, offset, length].
array_refs = st.builds(
    lambda dtype, shape, offset, length, code: msgpack.ExtType(
        code, msgpack.packb([dtype, shape, offset, length])
    ),
    st.sampled_from(["<f8", "<i4", "|u1", "O", "V0", "S0", "<U0", "bogus", "<M8"]),
    st.lists(st.integers(-2, 8), max_size=3) | values,
    st.integers(-4, 64),
    st.integers(-4, 64),
    st.sampled_from([1, 1, 2]),
)


def frame(header: Any, body: bytes) -> bytes:
    packed = msgpack.packb(header, use_bin_type=True)
    return FRAME_PREFIX.pack(len(packed), len(body)) + packed + body


def feed_all(chunks: list[bytes]) -> None:
    """Feed `chunks` to a fresh decoder; only RpcError may come out."""
    decoder = FrameDecoder()
    try:
        for chunk in chunks:
            decoder.feed(chunk)
    except RpcError:
        pass


@FUZZ
@given(data=st.binary(max_size=400), cut=st.integers(0, 400))
def test_arbitrary_bytes(data: bytes, cut: int) -> None:
    feed_all([data[:cut], data[cut:]])


@FUZZ
@given(
    kind=st.sampled_from(MESSAGE_TYPES) | values,
    fields=st.dictionaries(
        st.sampled_from(FIELDS) | st.text(max_size=4), values | array_refs, max_size=6
    ),
    body=st.binary(max_size=64),
)
def test_well_framed_wrong_messages(kind: Any, fields: dict[str, Any], body: bytes) -> None:
    feed_all([frame({"t": kind, **fields}, body)])


@FUZZ
@given(header=values, body=st.binary(max_size=32))
def test_headers_that_are_not_maps(header: Any, body: bytes) -> None:
    feed_all([frame(header, body)])


@FUZZ
@given(
    header_len=st.integers(0, 2**32 - 1),
    body_len=st.integers(0, 2**32 - 1),
    rest=st.binary(max_size=64),
)
def test_frame_lengths_that_lie(header_len: int, body_len: int, rest: bytes) -> None:
    feed_all([struct.pack(">II", header_len, body_len) + rest])


@FUZZ
@given(
    input_type=st.sampled_from(list(InputType)),
    lens=st.lists(st.integers(-8, 80), max_size=6),
    body=st.binary(max_size=80),
)
def test_batch_bodies_that_do_not_match_their_lengths(
    input_type: InputType, lens: list[int], body: bytes
) -> None:
    with contextlib.suppress(RpcError):
        decode_inputs(input_type, lens, memoryview(body))


@FUZZ
@given(row=values | st.binary(max_size=64))
def test_tensor_rows_of_wrong_shape(row: Any) -> None:
    buffer = row if isinstance(row, bytes) else msgpack.packb(row, use_bin_type=True)
    with contextlib.suppress(RpcError):
        decode_tensor_row(buffer)


def test_an_unregistered_peer_cannot_send_a_large_frame() -> None:
    decoder = FrameDecoder(FrameDecoder.UNREGISTERED_MAX_FRAME_BYTES)
    register = encode_message(RegisterMessage("m", "1", 0, "doubles", pid=1, secret="s"))

    assert decoder.feed(register)
    with pytest.raises(RpcError, match="too large"):
        decoder.feed(struct.pack(">II", 10, 1 << 20))
