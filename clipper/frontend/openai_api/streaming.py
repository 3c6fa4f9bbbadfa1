"""Streamed (chat) completions: Server-Sent Events of OpenAI's chunks, `data: {...}` one
per piece the model yields (a chat stream's first chunk gives the role), then a chunk with
the finish reason, the usage chunk when `stream_options.include_usage` asks, and
`data: [DONE]`.

The reply is decided before its first byte goes out: the handler waits for the first
piece (the SLO bounds that wait), so a missed SLO, a refused query or a model that fails
before its first piece is a plain error reply with its status. After it, an error ends
the stream with a `data: {"error": {...}}` event (which OpenAI's clients raise) and
`[DONE]`. The stream stops the model (cancel) once a stop string or `max_tokens` is
reached, or when the client goes away. An app whose queries take a route (a policy, a
pipeline, a rollout), or a model that does not stream, is answered whole, in one chunk.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from clipper.core.generation import Generated, StopScanner, read_piece
from clipper.core.types import InputBuffer
from clipper.dataplane.answers import observe_answers
from clipper.dataplane.dataplane import DataPlane, PieceStream, Prediction
from clipper.frontend.openai_api import replies
from clipper.frontend.openai_api.errors import openai_error
from clipper.frontend.openai_api.requests import Asked
from clipper.frontend.openai_api.results import Target, default_error, generated
from clipper.http.reply import StreamedReply
from clipper.metrics.server_metrics import ServerMetrics

__all__ = ["DONE", "event", "streamed_reply"]

DONE = b"data: [DONE]\n\n"


def event(value: Any) -> bytes:
    """One `data:` event of a JSON value."""
    return b"data: %s\n\n" % orjson.dumps(value)


class _Chunks:
    """How one stream's chunks are made: its kind, id and model."""

    __slots__ = ("include_usage", "kind", "model", "reply_id")

    def __init__(self, kind: replies.Kind, reply_id: str, model: str, usage: bool) -> None:
        self.kind, self.reply_id, self.model, self.include_usage = kind, reply_id, model, usage

    def text(self, text: str | None, finish: str | None = None, role: bool = False) -> bytes:
        return event(replies.chunk(self.kind, self.reply_id, self.model, text, finish, role))

    def ending(self, result: Generated) -> list[bytes]:
        """The finish chunk, the usage chunk if asked, and `[DONE]`."""
        ending = [self.text(None, result.finish_reason or "stop")]
        if self.include_usage:
            usage = replies.usage(result.prompt_tokens, result.completion_tokens)
            ending.append(event({"id": self.reply_id, "object": self.kind.chunk_object,
                                 "created": int(time.time()), "model": self.model,
                                 "choices": [], "usage": usage}))  # fmt: skip
        return [*ending, DONE]


async def streamed_reply(
    dataplane: DataPlane,
    metrics: ServerMetrics,
    target: Target,
    asked: Asked,
    kind: replies.Kind,
    reply_id: str,
    buffer: InputBuffer,
    deadline: float,
) -> StreamedReply:
    """The SSE reply of a streamed request (raises, before any byte, what fails first)."""
    started = time.monotonic()
    name = target.app.name
    chunks = _Chunks(kind, reply_id, name, asked.include_usage)
    stream = dataplane.stream(name, buffer, None, deadline)
    if not isinstance(stream, PieceStream):
        answered = [stream] if stream is not None else None
        if answered is None:
            answered = await dataplane.predict(name, [buffer], None, deadline)
        observe_answers(metrics, name, answered, time.monotonic() - started)
        result = generated(answered[0], asked.stop, target)
        return StreamedReply(_whole(chunks, result), _nothing)
    pieces = stream.pieces()
    first = await anext(pieces, None)
    if first is None:  # no piece: the default (raised), or a model that does not stream
        answer = stream.answer()
        observe_answers(metrics, name, [answer], time.monotonic() - started)
        return StreamedReply(_whole(chunks, generated(answer, asked.stop, target)), _nothing)
    run = _Run(stream, pieces, asked, target, chunks)
    return StreamedReply(run.events(first, metrics, started), stream.cancel)


def _nothing() -> None:
    """Nothing to stop when a whole answer's client goes away."""


async def _whole(chunks: _Chunks, result: Generated) -> AsyncIterator[bytes]:
    """A whole answer as a stream: its text in one chunk, then the ending."""
    if chunks.kind.chat:
        yield chunks.text("", role=True)
    yield chunks.text(result.text)
    for part in chunks.ending(result):
        yield part


class _Run:
    """One stream's pieces as chunks: cut at a stop string or `max_tokens`."""

    def __init__(
        self,
        stream: PieceStream,
        pieces: AsyncIterator[Any],
        asked: Asked,
        target: Target,
        chunks: _Chunks,
    ) -> None:
        self._stream = stream
        self._pieces = pieces
        self._asked = asked
        self._target = target
        self._chunks = chunks
        self._scanner = StopScanner(asked.stop)
        self.result = Generated()
        self._cut_off = False  # ended here, the model maybe still running: not a default

    async def events(
        self, first: Any, metrics: ServerMetrics, started: float
    ) -> AsyncIterator[bytes]:
        """Every event of the stream, from its first piece on."""
        if self._chunks.kind.chat:
            yield self._chunks.text("", role=True)
        piece: Any = first
        while piece is not None:
            text = self._take(piece)
            if text:
                yield self._chunks.text(text)
            if self.result.finish_reason is not None:  # a stop string, max_tokens, or done
                self._stream.cancel()  # stops the model if it still runs
                self._cut_off = True
                break
            piece = await anext(self._pieces, None)
        rest = self._scanner.flush()
        if rest:
            yield self._chunks.text(rest)
        answer = self._answer()
        observe_answers(metrics, self._target.app.name, [answer], time.monotonic() - started)
        if answer.is_default:
            yield event({"error": openai_error(default_error(answer, self._target))})
            yield DONE
            return
        for part in self._chunks.ending(self.result):
            yield part

    def _take(self, piece: Any) -> str:
        """Count one piece; the text it lets out now."""
        one = read_piece(piece)
        result = self.result
        result.prompt_tokens += one.prompt_tokens
        result.completion_tokens += one.completion_tokens
        text = self._scanner.feed(one.text)
        if self._scanner.stopped:
            result.finish_reason = "stop"
        elif one.finish_reason:
            result.finish_reason = one.finish_reason
        elif result.completion_tokens >= self._asked.max_tokens:
            result.finish_reason = "length"
        return text

    def _answer(self) -> Prediction:
        """The stream's answer for the metrics: a model output unless it failed."""
        if self._cut_off:
            return Prediction(self._stream.query_id, None)
        return self._stream.answer()
