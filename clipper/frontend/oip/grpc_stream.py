"""gRPC `ModelStreamInfer` (Triton's bidirectional stream) over the InferenceService.

The requests of one call are answered concurrently, each by its own task, and their
responses interleave on the call (a response carries its request's `id`). A request of one
row to a model that streams (Triton's decoupled model) is answered with one
ModelStreamInferResponse per piece, as the model yields it, each flagged with the parameter
`triton_final_response` false; when the request's parameter
`triton_enable_empty_final_response` is true (tritonclient's `enable_empty_final_response`)
an empty response flagged true follows the last piece, as Triton sends it. Any other
request (a model that does not stream, several rows) gets one response, flagged true. An
error, before or during a stream, is one response with `error_message` set (the protocol's
message, prefixed with its stable `code`), and ends that request. A call that ends or is
cancelled stops each of its streams in the worker (`PieceStream.cancel`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from clipper.core.exceptions import ClipperError
from clipper.core.input_limits import InputLimits
from clipper.dataplane.dataplane import StreamLimits
from clipper.frontend.oip.datatypes import InferRequest, InferResponse
from clipper.frontend.oip.grpc import grpc_predict_v2_pb2 as pb
from clipper.frontend.oip.rows import input_buffers, output_tensors
from clipper.frontend.oip.service import InferenceService, ModelTarget
from clipper.http.errors import error_row

__all__ = ["FINAL_FLAG", "StreamInfer", "error_message"]

FINAL_FLAG = "triton_final_response"
EMPTY_FINAL_ASKED = "triton_enable_empty_final_response"

Decode = Any  # Callable[[ModelInferRequest, InputLimits], InferRequest]
Encode = Any  # Callable[[InferResponse], ModelInferResponse]


def error_message(exc: BaseException) -> str:
    """A stream response's `error_message`: `<code>: <message>`."""
    return f"{error_row(exc).code}: {exc}"


class StreamInfer:
    """One ModelStreamInfer call: read its requests, write each one's responses."""

    def __init__(
        self,
        service: InferenceService,
        limits: InputLimits,
        decode: Decode,
        encode: Encode,
        context: Any,
    ) -> None:
        self._service = service
        self._limits = limits
        self._decode = decode
        self._encode = encode
        self._context = context
        self._writing = asyncio.Lock()  # one write in flight at a time, as grpc.aio wants

    async def run(self, requests: AsyncIterator[Any], check: Any) -> None:
        """Answer every request of the call; `check(request)` raises for one refused."""
        async with asyncio.TaskGroup() as group:
            async for request in requests:
                group.create_task(self._answer(request, check))

    async def _answer(self, request: Any, check: Any) -> None:
        try:
            check(request)
            infer = self._decode(request, self._limits)
            target = self._service.resolve(request.model_name, request.model_version or None)
            await self._respond(request, target, infer)
        except ClipperError as exc:
            await self._write(pb.ModelStreamInferResponse(error_message=error_message(exc)))

    async def _respond(self, request: Any, target: ModelTarget, infer: InferRequest) -> None:
        record = target.record
        buffers = input_buffers(target.signature, record.input_type, infer.inputs)
        budget_s = self._context.time_remaining()
        if len(buffers) != 1:
            response = await self._service.infer(
                request.model_name, request.model_version or None, infer, budget_s
            )
            await self._write_response(response, final=True)
            return
        stream, stream_budget_s = self._service.open_stream(
            target, buffers[0], infer.timeout_us, budget_s, StreamLimits()
        )
        got_pieces = False
        try:
            async for piece in stream.pieces():
                got_pieces = True
                await self._write_response(self._piece(target, infer, piece), final=False)
        finally:
            stream.cancel()  # the call went away: stop the model (a no-op once it ended)
        error = stream.error()
        if error is not None:
            raise error
        answer = stream.answer()
        if answer.is_default:
            raise self._service.failure(answer, target, stream_budget_s)
        if not got_pieces:  # a model that does not stream: its answer, final
            await self._write_response(self._piece(target, infer, answer.output), final=True)
        elif infer.parameters.get(EMPTY_FINAL_ASKED) is True:
            empty = InferResponse(target.name, record.version, [], [], infer.id)
            await self._write_response(empty, final=True)

    def _piece(self, target: ModelTarget, infer: InferRequest, output: Any) -> InferResponse:
        record = target.record
        outputs = output_tensors(target.signature, record.input_type, [output])
        return InferResponse(target.name, record.version, outputs, [False] * len(outputs), infer.id)

    async def _write_response(self, response: InferResponse, final: bool) -> None:
        message = self._encode(response)
        message.parameters[FINAL_FLAG].bool_param = final
        await self._write(pb.ModelStreamInferResponse(infer_response=message))

    async def _write(self, message: Any) -> None:
        async with self._writing:
            await self._context.write(message)
