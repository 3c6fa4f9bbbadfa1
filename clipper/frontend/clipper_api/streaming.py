"""Streamed predictions of Clipper's REST API: Server-Sent Events.

`POST /{app}/predict` with `"stream": true` in its body, or an `Accept` header naming
`text/event-stream`, is answered with Server-Sent Events: one `data:` event per piece the
model yields (the piece as JSON), as it arrives, then one `event: end` whose data is the
usual reply (`query_id`, `output`: the pieces joined, `default`, `models`, ...). The SLO
bounds the time to the first piece: when none came by then the stream's only event is the
`end` event with the default output (`default: true`). A model that does not stream, an
`input_batch`, or an app whose queries take a route (a policy, a pipeline, a rollout) is
answered the same way with one `end` event holding the whole reply.

Two optional body fields bound the whole stream (`clipper.dataplane.streams.StreamLimits`):
`stream_timeout_s` (seconds from the request) and `max_pieces`. Past the first, the stream's
last event is `event: error`; reaching the second, the `end` event's `finish_reason` is
`"length"` (else `"stop"`) and its `output` the pieces sent. A model that raises, or a
replica that dies, mid-stream also ends it with `event: error`, whose data is Clipper's
error body (`error`, `cause`, `code`: `DeadlineExceeded`, `ModelError`, `ReplicaCrashed`)
and the `query_id`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson

from clipper.core.inputs import PredictRequest
from clipper.core.outputs import dumps_outputs
from clipper.dataplane.dataplane import DataPlane, PieceStream, Prediction, StreamLimits
from clipper.http.errors import error_row
from clipper.http.reply import Headers, StreamedReply, sse_event

__all__ = [
    "QueryEvents",
    "StreamEvent",
    "asks_stream",
    "error_event_data",
    "query_events",
    "stream_limits",
    "streamed_reply",
    "wants_stream",
]

_EVENT_STREAM = b"text/event-stream"
_STREAM_KEY = b'"stream"'

StreamEvent = tuple[str, bytes]
"""One event of a streamed query: its name ("" a piece, "end", "error") and its JSON data."""
WholeReply = Callable[[list[Prediction]], bytes]
"""The JSON reply of a request's answers (Clipper's body), for the `end` event."""


def wants_stream(headers: Headers, body: bytes) -> bool:
    """Whether a predict request asks for Server-Sent Events (see the module's docstring)."""
    for name, value in headers:
        if name == b"accept" and _EVENT_STREAM in value:
            return True
    return asks_stream(body)


def asks_stream(body: bytes) -> bool:
    """Whether a predict request's body asks for Server-Sent Events (`"stream": true`)."""
    if _STREAM_KEY not in body:
        return False
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False  # the plain path answers the malformed body
    return isinstance(parsed, dict) and parsed.get("stream") is True


def stream_limits(body: bytes) -> StreamLimits:
    """The limits a streamed predict request's body asks for (InvalidInput if malformed)."""
    parsed = orjson.loads(body)
    return StreamLimits.parse(parsed.get("stream_timeout_s"), parsed.get("max_pieces"))


def error_event_data(stream: PieceStream, error: BaseException) -> bytes:
    """The data of a stream's `error` event: Clipper's error body and the `query_id`."""
    row = error_row(error)
    return orjson.dumps(
        {"error": row.error, "cause": str(error), "code": row.code, "query_id": stream.query_id}
    )


@dataclass(frozen=True, slots=True)
class QueryEvents:
    """A streamed query's events, whatever carries them (SSE, a WebSocket): each
    `(name, data)`, name "" for a piece, then one "end" or "error"; `cancel` stops it."""

    events: AsyncIterator[StreamEvent]
    cancel: Callable[[], None]


def query_events(
    dataplane: DataPlane,
    app_name: str,
    request: PredictRequest,
    deadline: float,
    whole_reply: WholeReply,
    limits: StreamLimits,
) -> QueryEvents:
    """The events of a streamed predict request (see the module's docstring)."""
    stream: PieceStream | Prediction | None = None
    if not request.is_batch:
        stream = dataplane.stream(app_name, request.buffers[0], request.version, deadline, limits)
    if isinstance(stream, PieceStream):
        return QueryEvents(_events(stream, whole_reply), stream.cancel)
    answered = [stream] if isinstance(stream, Prediction) else None
    return QueryEvents(_whole(dataplane, app_name, request, deadline, answered, whole_reply),
                       _nothing)  # fmt: skip


def streamed_reply(events: QueryEvents) -> StreamedReply:
    """The SSE reply of a streamed predict request's events."""
    return StreamedReply(_as_sse(events.events), events.cancel)


async def _as_sse(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    async for name, data in events:
        yield sse_event(data, name)


async def _events(stream: PieceStream, whole_reply: WholeReply) -> AsyncIterator[StreamEvent]:
    async for piece in stream.pieces():
        yield "", dumps_outputs(piece)
    error = stream.error()
    if error is not None:
        yield "error", error_event_data(stream, error)
        return
    reply = orjson.loads(whole_reply([stream.answer()]))
    reply["finish_reason"] = stream.finish_reason
    yield "end", orjson.dumps(reply)


async def _whole(
    dataplane: DataPlane,
    app_name: str,
    request: PredictRequest,
    deadline: float,
    answered: list[Prediction] | None,
    whole_reply: WholeReply,
) -> AsyncIterator[StreamEvent]:
    """One `end` event: the request answered as a plain predict would be."""
    if answered is None:
        answered = await dataplane.predict(
            app_name, request.buffers, request.version, deadline, request.uid
        )
    yield "end", whole_reply(answered)


def _nothing() -> None:
    """Nothing to stop when a whole reply's client goes away."""
