"""The Open Inference Protocol over gRPC: `inference.GRPCInferenceService` on grpc.aio.

The server runs on the query server's event loop, beside REST, over the same
InferenceService. Inputs come as `raw_input_contents` (numpy arrays over the received
bytes; a one-row tensor reaches the worker without a copy) or typed `contents`; outputs
always go back as `raw_output_contents`, as Triton does. ModelInfer checks the same query
tokens as REST (`authorization: Bearer <token>` call metadata); with the TLS settings the
port serves TLS with the query API's certificate. ModelStreamInfer (Triton's stream, for
decoupled models: clipper.frontend.oip.grpc_stream) and ModelConfig (Triton's, its
`model_transaction_policy.decoupled` true for a model that streams) sit beside them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from clipper.core.exceptions import ClipperError, InvalidInput, Overloaded
from clipper.core.input_limits import InputLimits
from clipper.frontend.oip.datatypes import (
    BYTES,
    InferRequest,
    InferResponse,
    RequestedOutput,
    Tensor,
    numpy_dtype,
    serialize_bytes,
)
from clipper.frontend.oip.grpc import grpc_predict_v2_pb2 as pb
from clipper.frontend.oip.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from clipper.frontend.oip.grpc_stream import StreamInfer
from clipper.frontend.oip.rest_codec import binary_data, check_shape
from clipper.frontend.oip.service import InferenceService
from clipper.http.errors import error_row
from clipper.security.auth import QueryTokenGuard

if TYPE_CHECKING:
    from clipper.tracing.session import QueryTracing

__all__ = [
    "GrpcConnectionLimits",
    "InferenceServicer",
    "decode_infer_request",
    "encode_infer_response",
    "start_grpc",
]

log = logging.getLogger("clipper.grpc")
Context = Any  # grpc.aio.ServicerContext (grpc ships no type hints)

# Which typed `contents` field holds each datatype (FP16 only travels raw).
_CONTENTS_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents",
    BYTES: "bytes_contents",
}  # fmt: skip


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The six RPCs of the protocol, and Triton's ModelStreamInfer and ModelConfig, over an
    InferenceService."""

    def __init__(
        self,
        service: InferenceService,
        limits: InputLimits | None = None,
        guard: QueryTokenGuard | None = None,
    ) -> None:
        self._service = service
        self._limits = limits if limits is not None else InputLimits()
        self._guard = guard if guard is not None else QueryTokenGuard()

    async def ServerLive(self, request: Any, context: Context) -> Any:
        """Always live while it answers."""
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Context) -> Any:
        """Ready when every application's models have a replica."""
        return pb.ServerReadyResponse(ready=self._service.server_ready())

    async def ModelReady(self, request: Any, context: Context) -> Any:
        """Whether the model (version) has a replica; false for unknown names."""
        try:
            ready = self._service.model_ready(request.name, request.version or None)
        except ClipperError:
            ready = False
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(self, request: Any, context: Context) -> Any:
        """Name, version and extensions."""
        return pb.ServerMetadataResponse(**self._service.server_metadata())

    async def ModelMetadata(self, request: Any, context: Context) -> Any:
        """The model's versions, platform and signature."""
        try:
            metadata = self._service.model_metadata(request.name, request.version or None)
        except ClipperError as exc:
            await context.abort(_grpc_status(exc), str(exc))
        tensors = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[tensors(**spec) for spec in metadata["inputs"]],
            outputs=[tensors(**spec) for spec in metadata["outputs"]],
        )

    async def ModelInfer(self, request: Any, context: Context) -> Any:
        """Inference; the call's deadline, if any, bounds the query's."""
        try:
            if request.model_name in self._guard.v2_names:  # the one lookup open names pay
                self._guard.require_v2(request.model_name, _metadata(context))
            infer_request = decode_infer_request(request, self._limits)
            response = await self._service.infer(
                request.model_name,
                request.model_version or None,
                infer_request,
                context.time_remaining(),
            )
            return encode_infer_response(response)
        except ClipperError as exc:
            if isinstance(exc, Overloaded):  # RESOURCE_EXHAUSTED, and when to retry
                seconds = max(1, math.ceil(exc.retry_after_s))
                context.set_trailing_metadata((("retry-after", str(seconds)),))
            await context.abort(_grpc_status(exc), str(exc))

    async def ModelStreamInfer(self, requests: Any, context: Context) -> None:
        """Inference over a stream: each piece of a streaming model as a response."""
        run = StreamInfer(self._service, self._limits, decode_infer_request, encode_infer_response,
                          context)  # fmt: skip
        await run.run(requests, lambda request: self._check_token(request, context))

    def _check_token(self, request: Any, context: Context) -> None:
        if request.model_name in self._guard.v2_names:  # the one lookup open names pay
            self._guard.require_v2(request.model_name, _metadata(context))

    async def ModelConfig(self, request: Any, context: Context) -> Any:
        """The model's configuration (Triton's), `decoupled` for a model that streams."""
        try:
            config = self._service.model_config(request.name, request.version or None)
        except ClipperError as exc:
            await context.abort(_grpc_status(exc), str(exc))
        decoupled = config["model_transaction_policy"]["decoupled"]
        return pb.ModelConfigResponse(
            config=pb.ModelConfig(
                name=config["name"],
                platform=config["platform"],
                backend=config["backend"],
                input=[pb.ModelInput(**_config_tensor(spec)) for spec in config["input"]],
                output=[pb.ModelOutput(**_config_tensor(spec)) for spec in config["output"]],
                model_transaction_policy=pb.ModelTransactionPolicy(decoupled=decoupled),
            )
        )


def _config_tensor(spec: dict[str, Any]) -> dict[str, Any]:
    return {"name": spec["name"], "data_type": spec["data_type"], "dims": spec["dims"]}


def _metadata(context: Context) -> list[tuple[bytes, bytes]]:
    """The call's text metadata as header pairs (gRPC keys are already lower case)."""
    return [
        (key.encode(), value.encode())
        for key, value in context.invocation_metadata() or ()
        if isinstance(value, str)
    ]


def decode_infer_request(request: Any, limits: InputLimits | None = None) -> InferRequest:
    """A ModelInferRequest as an InferRequest."""
    limits = limits if limits is not None else InputLimits()
    limits.check_batch(len(request.inputs))
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs"
        )
    inputs = []
    for index, tensor in enumerate(request.inputs):
        shape = tuple(tensor.shape)
        if raw:
            data = binary_data(tensor.name, tensor.datatype, raw[index], shape, limits)
        else:
            data = _contents(tensor, shape, limits)
        inputs.append(Tensor(tensor.name, tensor.datatype, shape, data, _params(tensor.parameters)))
    outputs = [RequestedOutput(output.name) for output in request.outputs]
    return InferRequest(
        inputs=inputs,
        outputs=outputs or None,
        id=request.id or None,
        parameters=_params(request.parameters),
    )


def _contents(
    tensor: Any, shape: tuple[int, ...], limits: InputLimits
) -> np.ndarray[Any, Any] | list[bytes]:
    field = _CONTENTS_FIELDS.get(tensor.datatype)
    if field is None:
        numpy_dtype(tensor.datatype)  # unknown datatypes get their own message
        raise InvalidInput(f"input {tensor.name!r}: {tensor.datatype} data must be raw")
    values = getattr(tensor.contents, field)
    count = check_shape(shape, limits)
    if len(values) != count:
        raise InvalidInput(f"input {tensor.name!r}: {len(values)} elements for {count} in shape")
    if tensor.datatype == BYTES:
        elements = list(values)
        if elements:
            limits.check_string(max(map(len, elements)))
        return elements
    dtype = numpy_dtype(tensor.datatype)
    if dtype.kind not in "iu" or not len(values):
        return np.array(values, dtype=dtype).reshape(shape)
    wide = np.array(values)  # the contents field's own width (32 or 64 bits)
    bounds = np.iinfo(dtype)
    low, high = wide.min(), wide.max()
    if low < bounds.min or high > bounds.max:
        raise InvalidInput(
            f"input {tensor.name!r}: {tensor.datatype} values must lie in "
            f"[{bounds.min}, {bounds.max}]; got {low if low < bounds.min else high}"
        )
    return wide.astype(dtype, copy=False).reshape(shape)


def _params(parameters: Any) -> dict[str, Any]:
    values = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is not None:
            values[key] = getattr(parameter, choice)
    return values


def encode_infer_response(response: InferResponse) -> Any:
    """An InferResponse as a ModelInferResponse with raw output contents."""
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id or "",
    )
    raw = []
    for tensor in response.outputs:
        message.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        if isinstance(tensor.data, np.ndarray):
            raw.append(np.ascontiguousarray(tensor.data).tobytes())
        else:
            raw.append(serialize_bytes(tensor.data))
    message.raw_output_contents.extend(raw)
    return message


@dataclass(frozen=True, slots=True)
class GrpcConnectionLimits:
    """The gRPC port's connection bounds, enforced by gRPC's core: at most
    `max_connections` (checked before the handshake, so connections that send nothing
    count too), the TLS and HTTP/2 handshake due within `handshake_timeout_s`, and a
    connection with no call for `idle_timeout_s` closed (a client reconnects on its next
    call). gRPC has no per-address cap."""

    max_connections: int = 1024
    handshake_timeout_s: float = 10.0
    idle_timeout_s: float = 300.0

    def options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.max_allowed_incoming_connections", self.max_connections),
            ("grpc.server_handshake_timeout_ms", int(self.handshake_timeout_s * 1000)),
            ("grpc.max_connection_idle_ms", int(self.idle_timeout_s * 1000)),
        ]


async def start_grpc(
    service: InferenceService,
    host: str,
    port: int,
    max_message_bytes: int,
    limits: InputLimits | None = None,
    guard: QueryTokenGuard | None = None,
    tls: tuple[Path, Path] | None = None,
    connections: GrpcConnectionLimits | None = None,
    tracing: QueryTracing | None = None,
    reuse_port: bool = False,
) -> grpc.aio.Server | None:
    """Serve gRPC on `host:port`, over TLS with `tls` = (certificate, key) files, its
    ModelInfer traced by `tracing` when given; None (logged) when the port cannot be bound.
    `reuse_port`: share the port with other processes (SO_REUSEPORT, several frontends)."""
    connections = connections if connections is not None else GrpcConnectionLimits()
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", int(reuse_port)),
            *connections.options(),
        ]
    )
    servicer = InferenceServicer(service, limits, guard)
    if tracing is not None:  # ModelInfer traced when sampled; nothing added when off
        servicer.ModelInfer = tracing.wrap_grpc("ModelInfer", servicer.ModelInfer)  # type: ignore[method-assign,assignment]
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            cert, key = (path.read_bytes() for path in tls)
            bound = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    except RuntimeError as exc:
        log.error("gRPC disabled: cannot bind %s: %s", address, exc)
        return None
    if not bound:
        log.error("gRPC disabled: cannot bind %s", address)
        return None
    await server.start()
    return server


def _grpc_status(exc: ClipperError) -> grpc.StatusCode:
    """The gRPC status of `exc`, from the one error table."""
    return grpc.StatusCode[error_row(exc).grpc_status]
