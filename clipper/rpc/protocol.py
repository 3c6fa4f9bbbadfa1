"""The worker RPC protocol, version 3: frames <-> messages, no I/O.

A frame is `>II` (header length, body length), a msgpack header (a map with key "t" naming
the message type), then a body of raw bytes. Batch requests carry the inputs in the body,
each one a buffer, concatenated; the header's "lens" gives each buffer's length. Numeric
inputs are the raw little-endian bytes of their numpy array (int32 for `integers`, float32
for `floats`, float64 for `doubles`), strings are UTF-8, bytes are themselves. A `tensors`
input (a model with several named input tensors, from the Open Inference Protocol) is one
batch row: a msgpack map {name: [numpy dtype string or nil for BYTES, row shape, data]}
where data is the row's raw bytes, or a list of byte strings for BYTES; the worker hands
the model a dict {name: numpy array of that shape} per row (`encode_tensor_row`).

Replies carry numeric numpy outputs out of band: the header holds, in place of each array,
a msgpack ext value (type 1: [dtype string, shape, offset, length]) pointing into the
reply's body, so arrays cross without a per-element loop. The server decodes them as
read-only numpy arrays: views of the body when it holds one array, copies otherwise (so a
cached output never pins a whole batch). Byte-string outputs travel as msgpack bin.

Messages (direction, "t", fields):
    worker -> server  "register"  protocol, model, version, replica, input_type, pid, secret,
                                  streams (version 3; absent: False)
                                  max_sequences                         (version 3)
    server -> worker  "welcome"   protocol
    server -> worker  "refused"   reason (the worker exits)
    server -> worker  "batch"     id, input_type, budget_us, lens  (+ body)
    worker -> server  "reply"     id, outputs (JSON-compatible values), expired (indices)
    worker -> server  "error"     id, error_type, message, traceback
    worker -> server  "heartbeat"
    server -> worker  "shutdown"
    worker -> server  "piece"     id, index, piece                      (version 3)
    worker -> server  "end"       id, count, expired                    (version 3)
    server -> worker  "cancel"    id, index                             (version 3)
    worker -> server  "step"      size, latency_us, pieces              (version 3)

Streaming (version 3; the messages above are unchanged from version 2): a worker whose model
streams (its predict, or its `stream` method, is a generator or an async generator) says so
in its register (`streams`: the Open Inference Protocol calls such a model decoupled) and answers a
batch with `piece` messages as the model yields them, `index` naming the batch input a piece
belongs to (a JSON-compatible value), then one `end` (`count` the batch's inputs, `expired`
those skipped because their deadline passed), or an `error` that ends the batch (the pieces
sent before it stand). The server may send `cancel` for an input of a batch still streaming:
the worker stops iterating that input's generator before its next step (`index` -1: every
input of the batch). A cancel for a batch already answered is ignored. The server turns a
streamed batch into a `reply` of its own whose outputs are each input's pieces joined
(`join_pieces`), so a non-streaming query to a streaming model gets one output.

Continuous batching (version 3): a worker whose model has a step interface registers with
`max_sequences` > 0, the most sequences it runs at once (0: it does not batch continuously).
The server may then send it batches while others still stream, up to as many inputs as the
limit it keeps for that replica (at most `max_sequences`); the worker starts each batch's
inputs between two steps, so they join the sequences already running. After each step it
sends one `step` message: `size` the sequences the step advanced, `latency_us` what the step
took, and `pieces` the pieces it produced, each as [batch id, input index, piece] (in place
of one `piece` message each). A batch still ends with its own `end` (or `error`) once all
of its inputs are done or cancelled, whatever its neighbours do; a model error in a step
ends every batch of that step with an `error`.

A connection's first message must be a register carrying the cluster's worker secret
(`clipper.rpc.secret`); the server refuses and closes any other. Until then it reads frames
of at most `FrameDecoder.UNREGISTERED_MAX_FRAME_BYTES`, so an unauthenticated peer cannot
make it buffer a large frame.

Several query frontends (`Settings.frontends` > 1, `clipper.rpc.fanout`): a worker keeps
one connection to the control process (register, welcome, heartbeat, shutdown, as above)
and one more to each frontend, on which it sends the same `register` (its secret the
frontend ticket) and then answers that frontend's batches; the frontends send no
`shutdown` of a replica (a frontend that stops just closes). No message is added or
changed, so the version stays 3.

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

from clipper.core.buffers import receive_buffer
from clipper.core.dtypes import NUMERIC_DTYPES
from clipper.core.exceptions import RpcError
from clipper.core.types import InputType

__all__ = [
    "FRAME_PREFIX",
    "PROTOCOL_VERSION",
    "RECEIVE_CHUNK_BYTES",
    "SUPPORTED_PROTOCOLS",
    "UNSERIALISABLE_OUTPUT",
    "WORKER_ERROR_TYPES",
    "Batch",
    "BatchError",
    "BatchReply",
    "Cancel",
    "FrameDecoder",
    "Heartbeat",
    "Message",
    "Refused",
    "Register",
    "Shutdown",
    "Stepped",
    "StreamEnd",
    "StreamPiece",
    "Welcome",
    "decode_inputs",
    "decode_tensor_row",
    "encode_batch",
    "encode_message",
    "encode_reply_parts",
    "encode_tensor_row",
    "join_pieces",
]

PROTOCOL_VERSION = 3
SUPPORTED_PROTOCOLS = frozenset({2, 3})
"""What a server admits: a version-2 worker never streams, and needs nothing else."""
FRAME_PREFIX = struct.Struct(">II")
MAX_FRAME_BYTES = 1 << 31
RECEIVE_CHUNK_BYTES = 256 * 1024  # both ends read small frames through a reused chunk


@dataclass(frozen=True, slots=True)
class Register:
    """A worker announces which replica it serves."""

    model: str
    version: str
    replica: int
    input_type: str
    pid: int
    protocol: int = PROTOCOL_VERSION
    secret: str = field(default="", repr=False)  # never printed nor logged
    streams: bool = False  # the model streams (version 3)
    max_sequences: int = 0  # > 0: batches continuously, at most this many sequences


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


UNSERIALISABLE_OUTPUT = "UnserialisableOutput"
WORKER_ERROR_TYPES = frozenset({"MemoryError", "WrongNumberOfOutputs", UNSERIALISABLE_OUTPUT})
"""`BatchError.error_type`s whose message the worker writes itself (no model data in it);
any other names the exception the model's code raised, with its text."""


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


@dataclass(frozen=True, slots=True)
class StreamPiece:
    """One piece a streaming model yielded for input `index` of batch `id`."""

    id: int
    index: int
    piece: Any


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """Every input of a streamed batch of `count` inputs is done (or `expired`)."""

    id: int
    count: int
    expired: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop streaming input `index` of batch `id` (-1: all of its inputs)."""

    id: int
    index: int = -1


@dataclass(frozen=True, slots=True)
class Stepped:
    """One step of a continuous batch: `size` sequences advanced in `latency_us`, and the
    pieces the step produced as (batch id, input index, piece)."""

    size: int
    latency_us: int
    pieces: list[Any] = field(default_factory=list)


def join_pieces(pieces: list[Any]) -> Any:
    """One input's streamed pieces as one output: strings concatenated, else the list."""
    if pieces and all(isinstance(piece, str) for piece in pieces):
        return "".join(pieces)
    return pieces


Message = (
    Register | Welcome | Refused | Batch | BatchReply | BatchError | Heartbeat | Shutdown
    | StreamPiece | StreamEnd | Cancel | Stepped
)  # fmt: skip

_TYPE_NAMES: dict[type[Any], str] = {
    Register: "register",
    Welcome: "welcome",
    Refused: "refused",
    Batch: "batch",
    BatchReply: "reply",
    BatchError: "error",
    Heartbeat: "heartbeat",
    Shutdown: "shutdown",
    StreamPiece: "piece",
    StreamEnd: "end",
    Cancel: "cancel",
    Stepped: "step",
}
_TYPES_BY_NAME = {name: cls for cls, name in _TYPE_NAMES.items()}
_packer_options = {"use_bin_type": True}
_ARRAY_EXT = 1
_WIRE_KINDS = "biuf"  # numpy kinds whose arrays travel as raw bytes


def _frame(header: dict[str, Any], body: bytes | memoryview = b"") -> bytes:
    packed = msgpack.packb(header, **_packer_options)
    return b"".join((FRAME_PREFIX.pack(len(packed), len(body)), packed, body))


def encode_message(message: Message) -> bytes:
    """Encode any message except a Batch (use `encode_batch`) as one frame."""
    if isinstance(message, Batch):
        body, buffers, offset = memoryview(message.body), [], 0
        for length in message.lens:
            buffers.append(body[offset : offset + length])
            offset += length
        return encode_batch(message.id, message.input_type, message.budget_us, buffers)
    if isinstance(message, BatchReply):
        return _encode_reply(message)
    header = {"t": _TYPE_NAMES[type(message)]}
    header.update({name: getattr(message, name) for name in message.__slots__})
    return _frame(header)


def encode_batch(
    batch_id: int, input_type: str, budget_us: int, buffers: Sequence[bytes | memoryview]
) -> bytes:
    """Encode a batch request whose inputs are `buffers`, in order."""
    lens = [len(buffer) for buffer in buffers]
    header = {
        "t": "batch",
        "id": batch_id,
        "input_type": input_type,
        "budget_us": budget_us,
        "lens": lens,
    }
    packed = msgpack.packb(header, **_packer_options)
    # One join: the inputs are copied once, straight into the frame.
    return b"".join((FRAME_PREFIX.pack(len(packed), sum(lens)), packed, *buffers))


def _c_contiguous(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """`array` in C order, 0-d arrays staying 0-d (unlike np.ascontiguousarray)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


def _encode_reply(reply: BatchReply) -> bytes:
    """A reply frame; numeric numpy arrays in the outputs go to the body (see above)."""
    return b"".join(encode_reply_parts(reply))


def encode_reply_parts(reply: BatchReply) -> list[bytes | memoryview]:
    """A reply frame in parts, for a scatter send: the prefix and header, then each array
    output's memory as is (byte views, uncopied)."""
    arrays: list[np.ndarray[Any, Any]] = []
    offset = 0

    def out_of_band(value: Any) -> Any:
        nonlocal offset
        if not isinstance(value, np.ndarray) or value.dtype.kind not in _WIRE_KINDS:
            raise TypeError(f"cannot send a {type(value).__name__} in a reply")
        array = _c_contiguous(value)
        meta = [array.dtype.str, list(array.shape), offset, array.nbytes]
        arrays.append(array)
        offset += array.nbytes
        return msgpack.ExtType(_ARRAY_EXT, msgpack.packb(meta))

    header = {"t": "reply", "id": reply.id, "outputs": reply.outputs, "expired": reply.expired}
    packed = msgpack.packb(header, default=out_of_band, **_packer_options)
    head = FRAME_PREFIX.pack(len(packed), offset) + packed
    return [head, *(array.reshape(-1).view(np.uint8).data for array in arrays)]


def _array_hook(body: bytes | memoryview) -> Any:
    """A msgpack ext hook that turns array references into arrays over `body`."""

    def hook(code: int, data: bytes) -> Any:
        if code != _ARRAY_EXT:
            raise RpcError(f"unknown ext type {code} in a frame header")
        try:
            name, shape, offset, length = msgpack.unpackb(data)
            dtype = np.dtype(name)
        except (TypeError, ValueError) as exc:
            raise RpcError(f"malformed array reference in a frame header: {exc}") from exc
        if dtype.kind not in _WIRE_KINDS or dtype.itemsize == 0 or length % dtype.itemsize:
            raise RpcError(f"an array reference of dtype {dtype} does not fit {length} bytes")
        if offset < 0 or offset + length > len(body):
            raise RpcError("an array reference points outside the frame body")
        array = np.frombuffer(body, dtype, length // dtype.itemsize, offset)
        try:
            array = array.reshape(shape)
        except (TypeError, ValueError) as exc:
            raise RpcError(f"an array reference's shape does not fit its data: {exc}") from exc
        if length != len(body):
            array = array.copy()
        array.flags.writeable = False
        return array

    return hook


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


_NO_FRAME = memoryview(b"")


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, get whole messages out.

    Small frames gather in one buffer. A large frame (over `LARGE_FRAME_BYTES`) gets a
    buffer of its own size as soon as its prefix is known, and its body is handed out as a
    view of that buffer: its bytes are copied once, however many reads deliver them, or
    never when the reader receives straight into `receive_view()`.
    """

    LARGE_FRAME_BYTES = 1 << 16
    UNREGISTERED_MAX_FRAME_BYTES = 1 << 16

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes  # a larger frame is an RpcError
        self._buffer = bytearray()
        self._frame = _NO_FRAME  # the large frame being received
        self._filled = 0  # bytes of `_frame` received so far
        self._missing = 0  # bytes still to come of `_frame`

    def feed(self, data: bytes | memoryview) -> list[Message]:
        """Add received bytes; return every message they complete, in order."""
        messages: list[Message] = []
        view = memoryview(data)
        while view:
            if self._missing:
                view = self._fill(view, messages)
            else:
                self._buffer += view
                view = memoryview(b"")
                self._drain(messages)
        return messages

    def _drain(self, messages: list[Message]) -> None:
        """Decode the buffer's whole frames; set a large incomplete one aside."""
        offset = 0
        view = memoryview(self._buffer)
        try:
            while len(view) - offset >= FRAME_PREFIX.size:
                header_len, body_len = FRAME_PREFIX.unpack_from(view, offset)
                size = FRAME_PREFIX.size + header_len + body_len
                if header_len + body_len > self.max_frame_bytes:
                    raise RpcError(f"frame of {header_len + body_len} bytes is too large")
                if len(view) < offset + size:
                    if size > self.LARGE_FRAME_BYTES:
                        have = len(view) - offset
                        self._frame = receive_buffer(size)
                        self._frame[:have] = view[offset:]
                        self._filled, self._missing = have, size - have
                        offset = len(view)
                    break
                start = offset + FRAME_PREFIX.size
                body = bytes(view[start + header_len : offset + size]) if body_len else b""
                header = _unpack_header(view[start : start + header_len], body)
                messages.append(_message_from(header, memoryview(body)))
                offset += size
        finally:
            view.release()
        del self._buffer[:offset]

    def _fill(self, data: memoryview, messages: list[Message]) -> memoryview:
        """Take the large frame's next bytes; decode it once complete; return the rest."""
        taken = min(len(data), self._missing)
        self._frame[self._filled : self._filled + taken] = data[:taken]
        self._received(taken, messages)
        return data[taken:]

    def receive_view(self) -> memoryview | None:
        """Where the rest of an incomplete large frame goes, for a reader to receive into
        directly (then call `received`); None when no large frame is incomplete."""
        if not self._missing:
            return None
        return self._frame[self._filled :]

    def received(self, size: int) -> list[Message]:
        """`size` bytes were written into `receive_view()`: the messages they complete."""
        if not 0 < size <= self._missing:
            raise RpcError(f"received {size} bytes into a frame missing {self._missing}")
        messages: list[Message] = []
        self._received(size, messages)
        return messages

    def _received(self, size: int, messages: list[Message]) -> None:
        self._filled += size
        self._missing -= size
        if self._missing:
            return
        frame = self._frame
        self._frame, self._filled = _NO_FRAME, 0
        header_len, _ = FRAME_PREFIX.unpack_from(frame)
        start = FRAME_PREFIX.size
        body = frame[start + header_len :]
        header = _unpack_header(frame[start : start + header_len], body)
        messages.append(_message_from(header, body))


def _unpack_header(packed: memoryview, body: bytes | memoryview) -> dict[str, Any]:
    try:
        header = msgpack.unpackb(packed, raw=False, ext_hook=_array_hook(body))
    except (ValueError, TypeError, msgpack.ExtraData) as exc:
        raise RpcError(f"malformed frame header: {exc}") from exc
    if not isinstance(header, dict):
        raise RpcError("frame header is not a map")
    return header


def encode_tensor_row(row: dict[str, np.ndarray[Any, Any] | list[bytes]]) -> bytes:
    """One `tensors` input: named numeric arrays (one batch row each) or BYTES elements.

    A BYTES tensor is given as its flat list of elements with `None` for a shape of one
    dimension; use a numpy object array to keep a richer shape.
    """
    packed: dict[str, list[Any]] = {}
    for name, value in row.items():
        if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in _WIRE_KINDS:
            array = _c_contiguous(np.asarray(value))
            packed[name] = [array.dtype.str, list(array.shape), array.tobytes()]
        else:
            items = [bytes(item) for item in np.asarray(value, dtype=object).reshape(-1)]
            shape = list(np.shape(value))
            packed[name] = [None, shape, items]
    return msgpack.packb(packed, **_packer_options)  # type: ignore[no-any-return]


def decode_tensor_row(buffer: bytes | memoryview) -> dict[str, np.ndarray[Any, Any]]:
    """The model's view of one `tensors` input: {name: numpy array} (object for BYTES)."""
    try:
        packed = msgpack.unpackb(buffer, raw=False)
        if not isinstance(packed, dict):
            raise RpcError("a tensors input is not a map of tensors")
        row: dict[str, np.ndarray[Any, Any]] = {}
        for name, (dtype, shape, data) in packed.items():
            if dtype is None:
                array = np.empty(len(data), dtype=object)
                array[:] = data
            else:
                array = np.frombuffer(data, np.dtype(dtype))
            row[name] = array.reshape(shape)
    except (ValueError, TypeError, ZeroDivisionError, msgpack.ExtraData) as exc:
        raise RpcError(f"malformed tensors input: {exc}") from exc
    return row


def decode_inputs(input_type: InputType, lens: Sequence[int], body: memoryview) -> list[Any]:
    """Turn a batch body back into model inputs: numpy arrays (views), str or bytes."""
    try:
        return _decode_inputs(input_type, lens, body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RpcError(f"malformed {input_type.value} batch: {exc}") from exc


def _decode_inputs(input_type: InputType, lens: Sequence[int], body: memoryview) -> list[Any]:
    inputs: list[Any] = []
    offset = 0
    dtype = NUMERIC_DTYPES.get(input_type)
    for length in lens:
        chunk = body[offset : offset + length]
        offset += length
        if dtype is not None:
            inputs.append(np.frombuffer(chunk, dtype=dtype))
        elif input_type is InputType.TENSORS:
            inputs.append(decode_tensor_row(chunk))
        elif input_type is InputType.STRINGS:
            inputs.append(bytes(chunk).decode("utf-8"))
        else:
            inputs.append(bytes(chunk))
    if offset != len(body):
        raise RpcError(f"batch body has {len(body)} bytes but lens add up to {offset}")
    return inputs
