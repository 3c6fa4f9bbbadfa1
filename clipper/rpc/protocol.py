"""The worker RPC protocol, version 1: frames <-> messages, no I/O.

A frame is `>II` (header length, body length), a msgpack header (a map with key "t" naming
the message type), then a body of raw bytes. Only batch requests carry a body: the inputs,
each one a buffer, concatenated; the header's "lens" gives each buffer's length. Numeric
inputs are the raw little-endian bytes of their numpy array (int32 for `integers`, float32
for `floats`, float64 for `doubles`), strings are UTF-8, bytes are themselves.

Messages (direction, "t", fields):
    worker -> server  "register"  protocol, model, version, replica, input_type, pid
    server -> worker  "welcome"   protocol
    server -> worker  "refused"   reason (the worker exits)
    server -> worker  "batch"     id, input_type, budget_us, lens  (+ body)
    worker -> server  "reply"     id, outputs (JSON-compatible values), expired (indices)
    worker -> server  "error"     id, error_type, message, traceback
    worker -> server  "heartbeat"
    server -> worker  "shutdown"

`budget_us` is the time left until the batch's earliest deadline when it was sent; a worker
turns it into a deadline on its own clock, so clocks never need to agree across hosts.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from clipper.exceptions import RpcError
from clipper.types import InputType

__all__ = [
    "FRAME_PREFIX",
    "NUMERIC_DTYPES",
    "PROTOCOL_VERSION",
    "Batch",
    "BatchError",
    "BatchReply",
    "FrameDecoder",
    "Heartbeat",
    "Message",
    "Refused",
    "Register",
    "Shutdown",
    "Welcome",
    "decode_inputs",
    "encode_batch",
    "encode_message",
]

PROTOCOL_VERSION = 1
FRAME_PREFIX = struct.Struct(">II")
MAX_FRAME_BYTES = 1 << 31

NUMERIC_DTYPES: dict[InputType, np.dtype[Any]] = {
    InputType.INTEGERS: np.dtype("<i4"),
    InputType.FLOATS: np.dtype("<f4"),
    InputType.DOUBLES: np.dtype("<f8"),
}


@dataclass(frozen=True, slots=True)
class Register:
    """A worker announces which replica it serves."""

    model: str
    version: str
    replica: int
    input_type: str
    pid: int
    protocol: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Welcome:
    """The server accepted a registration."""

    protocol: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Refused:
    """The server refused a registration; the worker exits."""

    reason: str


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch of inputs for the model, as raw buffers."""

    id: int
    input_type: str
    budget_us: int
    lens: list[int]
    body: bytes | memoryview = b""


@dataclass(frozen=True, slots=True)
class BatchReply:
    """One output per input; `expired` lists inputs skipped because their deadline passed."""

    id: int
    outputs: list[Any]
    expired: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BatchError:
    """The model raised (or broke its contract) on this batch."""

    id: int
    error_type: str
    message: str
    traceback: str = ""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A worker is alive."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The worker should exit."""


Message = Register | Welcome | Refused | Batch | BatchReply | BatchError | Heartbeat | Shutdown

_TYPE_NAMES: dict[type[Any], str] = {
    Register: "register",
    Welcome: "welcome",
    Refused: "refused",
    Batch: "batch",
    BatchReply: "reply",
    BatchError: "error",
    Heartbeat: "heartbeat",
    Shutdown: "shutdown",
}
_TYPES_BY_NAME = {name: cls for cls, name in _TYPE_NAMES.items()}
_packer_options = {"use_bin_type": True}


def _frame(header: dict[str, Any], body: bytes | memoryview = b"") -> bytes:
    packed = msgpack.packb(header, **_packer_options)
    return b"".join((FRAME_PREFIX.pack(len(packed), len(body)), packed, body))


def encode_message(message: Message) -> bytes:
    """Encode any message except a Batch (use `encode_batch`) as one frame."""
    if isinstance(message, Batch):
        return encode_batch(message.id, message.input_type, message.budget_us, [message.body])
    header = {"t": _TYPE_NAMES[type(message)]}
    header.update({name: getattr(message, name) for name in message.__slots__})
    return _frame(header)


def encode_batch(
    batch_id: int, input_type: str, budget_us: int, buffers: Sequence[bytes | memoryview]
) -> bytes:
    """Encode a batch request whose inputs are `buffers`, in order."""
    header = {
        "t": "batch",
        "id": batch_id,
        "input_type": input_type,
        "budget_us": budget_us,
        "lens": [len(buffer) for buffer in buffers],
    }
    return _frame(header, b"".join(buffers))


def _message_from(header: dict[str, Any], body: memoryview) -> Message:
    kind = header.pop("t", None)
    cls = _TYPES_BY_NAME.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise RpcError(f"unknown message type {kind!r}")
    if cls is Batch:
        header["body"] = body
    try:
        return cls(**header)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise RpcError(f"malformed {kind!r} message: {exc}") from exc


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, get whole messages out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        """Add received bytes; return every message they complete, in order."""
        self._buffer += data
        messages: list[Message] = []
        offset = 0
        view = memoryview(self._buffer)
        try:
            while len(view) - offset >= FRAME_PREFIX.size:
                header_len, body_len = FRAME_PREFIX.unpack_from(view, offset)
                end = offset + FRAME_PREFIX.size + header_len + body_len
                if header_len + body_len > MAX_FRAME_BYTES:
                    raise RpcError(f"frame of {header_len + body_len} bytes is too large")
                if len(view) < end:
                    break
                start = offset + FRAME_PREFIX.size
                header = msgpack.unpackb(view[start : start + header_len], raw=False)
                if not isinstance(header, dict):
                    raise RpcError("frame header is not a map")
                body = bytes(view[start + header_len : end]) if body_len else b""
                messages.append(_message_from(header, memoryview(body)))
                offset = end
        finally:
            view.release()
        del self._buffer[:offset]
        return messages


def decode_inputs(input_type: InputType, lens: Sequence[int], body: memoryview) -> list[Any]:
    """Turn a batch body back into model inputs: numpy arrays (views), str or bytes."""
    inputs: list[Any] = []
    offset = 0
    dtype = NUMERIC_DTYPES.get(input_type)
    for length in lens:
        chunk = body[offset : offset + length]
        offset += length
        if dtype is not None:
            inputs.append(np.frombuffer(chunk, dtype=dtype))
        elif input_type is InputType.STRINGS:
            inputs.append(bytes(chunk).decode("utf-8"))
        else:
            inputs.append(bytes(chunk))
    if offset != len(body):
        raise RpcError(f"batch body has {len(body)} bytes but lens add up to {offset}")
    return inputs
