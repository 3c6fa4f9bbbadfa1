"""Triton's generate extension on the query port: a text-oriented endpoint for models that
stream (and for any other model of one input).

    POST /v2/models/{name}[/versions/{v}]/generate         one JSON answer
    POST /v2/models/{name}[/versions/{v}]/generate_stream  Server-Sent Events, one per piece

The request is a JSON object: the input under the model's input name (`input` unless its
signature says otherwise) or under `text_input` (Triton's name for a text model's), an
optional `id`, and optional `parameters`: `timeout` (microseconds, at most the SLO, which
bounds the time to the first piece), `stream_timeout_s` and `max_pieces` (bounds of the
whole stream, `clipper.dataplane.streams.StreamLimits`). An answer is
`{"id"?, "model_name", "model_version", <output>: value}`, `<output>` being `text_output`
for a request that sent `text_input`, else the model's output name. `/generate` answers
the pieces joined (strings concatenated, other pieces as a list); `/generate_stream` sends
one `data:` event per piece, as the model yields it (a model that does not stream: one
event, its answer), and the stream then ends. A request refused before inference starts is
answered with the protocol's JSON error and its status; an error after the stream started
is its last event, `data: {"error", "cause", "code"}` (`code`: `DeadlineExceeded` when no
piece came by the deadline or the stream ran past `stream_timeout_s`, `ModelError`,
`ReplicaCrashed`), as Triton's clients expect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from clipper.core.exceptions import ClipperError, InvalidInput
from clipper.core.input_limits import InputLimits
from clipper.core.inputs import encode_input
from clipper.core.outputs import dumps_outputs
from clipper.core.types import InputBuffer
from clipper.dataplane.dataplane import PieceStream, StreamLimits
from clipper.frontend.oip.service import InferenceService, ModelTarget
from clipper.http.errors import oip_error_body
from clipper.http.reply import Reply, StreamedReply, sse_event

__all__ = [
    "SSE_HEADERS",
    "GenerateRequest",
    "collect",
    "decode_generate_request",
    "generate_reply",
    "generate_stream_reply",
]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"transfer-encoding", b"chunked"),
]
"""Triton's generate_stream content type (clipper.http.reply.SSE_HEADERS, with a charset)."""

TEXT_INPUT = "text_input"
TEXT_OUTPUT = "text_output"


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """A decoded generate request: its one input, where its answer goes, its bounds."""

    buffer: InputBuffer
    output_name: str
    id: str | None
    timeout_us: int | None
    limits: StreamLimits


def decode_generate_request(
    body: bytes, target: ModelTarget, limits: InputLimits
) -> GenerateRequest:
    """Parse a generate request's body for `target` (see the module's docstring)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidInput("the request body must be a JSON object")
    signature = target.signature
    input_name = signature.inputs[0].name
    output_name = signature.outputs[0].name
    if input_name in parsed:
        value = parsed[input_name]
    elif TEXT_INPUT in parsed:
        value, output_name = parsed[TEXT_INPUT], TEXT_OUTPUT
    else:
        raise InvalidInput(f"the request has no '{input_name}' or '{TEXT_INPUT}'")
    buffer = encode_input(value, target.record.input_type, limits)
    parameters = parsed.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidInput("parameters must be a JSON object")
    request_id = parsed.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("id must be a string")
    timeout_us = parameters.get("timeout")
    if timeout_us is not None and (
        isinstance(timeout_us, bool) or not isinstance(timeout_us, int) or timeout_us < 0
    ):
        raise InvalidInput("parameters.timeout must be a non-negative integer (microseconds)")
    stream_limits = StreamLimits.parse(
        parameters.get("stream_timeout_s"), parameters.get("max_pieces")
    )
    return GenerateRequest(buffer, output_name, request_id, timeout_us, stream_limits)


def generate_reply(target: ModelTarget, request: GenerateRequest, output: Any) -> Reply:
    """The one JSON answer of `/generate`."""
    return Reply(200, _answer(target, request, output))


async def generate_stream_reply(
    service: InferenceService,
    target: ModelTarget,
    request: GenerateRequest,
    transport_budget_s: float | None,
) -> Reply:
    """`/generate_stream`'s reply: Server-Sent Events once the stream opened (a query
    refused at once raises, and is answered as a JSON error)."""
    stream, budget_s = service.open_stream(
        target, request.buffer, request.timeout_us, transport_budget_s, request.limits
    )
    events = _events(service, target, request, stream, budget_s)
    return StreamedReply(events, stream.cancel, SSE_HEADERS)


async def collect(
    service: InferenceService, target: ModelTarget, request: GenerateRequest,
    transport_budget_s: float | None,
) -> Any:  # fmt: skip
    """`/generate`'s output: every piece, joined (raises the stream's error)."""
    stream, budget_s = service.open_stream(
        target, request.buffer, request.timeout_us, transport_budget_s, request.limits
    )
    try:
        async for _ in stream.pieces():
            pass
    finally:
        stream.cancel()  # a no-op for a stream that ended
    return _outcome(service, target, stream, budget_s)


async def _events(
    service: InferenceService,
    target: ModelTarget,
    request: GenerateRequest,
    stream: PieceStream,
    budget_s: float,
) -> AsyncIterator[bytes]:
    got_pieces = False
    async for piece in stream.pieces():
        got_pieces = True
        yield sse_event(_answer(target, request, piece))
    try:
        output = _outcome(service, target, stream, budget_s)
    except ClipperError as exc:
        yield sse_event(oip_error_body(exc))
        return
    if not got_pieces:  # a model that does not stream: its answer is the one event
        yield sse_event(_answer(target, request, output))


def _outcome(
    service: InferenceService, target: ModelTarget, stream: PieceStream, budget_s: float
) -> Any:
    """The stream's answer; raises its error (a missed first piece: DeadlineExceeded)."""
    error = stream.error()
    if error is not None:
        raise error
    answer = stream.answer()
    if answer.is_default:
        raise service.failure(answer, target, budget_s)
    return answer.output


def _answer(target: ModelTarget, request: GenerateRequest, output: Any) -> bytes:
    body: dict[str, Any] = {} if request.id is None else {"id": request.id}
    body["model_name"] = target.name
    body["model_version"] = target.record.version
    body[request.output_name] = output
    return dumps_outputs(body)
