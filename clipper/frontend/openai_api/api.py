"""The OpenAI-compatible API on the query port, over the same query path as Clipper's API.

    GET  /v1/models               the apps whose model declares a task (id: the app)
    GET  /v1/models/{model}       one of them
    POST /v1/completions          `text-generation` apps
    POST /v1/chat/completions     `chat` apps (messages as they are) and `text-generation`
                                  apps (the messages rendered as one prompt)
    POST /v1/embeddings           `embedding` apps

An app's task is its first linked model's current version's (`task` at deploy,
clipper.core.generation). A request's `model` names the app: its query token (a bearer
key), selection policy, SLO, admission control and metrics apply as to Clipper's predict.
A whole reply is `predict` of one input per choice (each the JSON of a `GenerationRequest`:
a greedy or seeded request is the same bytes each time, so the cache answers it again); a
streamed one (`"stream": true`) goes through the data plane's streams (clipper.frontend.
openai_api.streaming). The SLO bounds a whole reply, or a stream's first piece. An answer
that would be the app's default output is an error instead: 504 for a missed SLO, 429 when
refused, 503 (no replica, a crash) or 500 (the model raised) otherwise.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import orjson

from clipper.core.exceptions import (
    ClipperError,
    InvalidInput,
    UnknownApplication,
)
from clipper.core.generation import (
    CHAT,
    EMBEDDING,
    TEXT_GENERATION,
)
from clipper.core.input_limits import InputLimits
from clipper.core.inputs import encode_input
from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.core.types import InputBuffer, InputType, ModelId
from clipper.dataplane.answers import observe_answers
from clipper.dataplane.dataplane import DataPlane
from clipper.frontend.openai_api import replies
from clipper.frontend.openai_api.errors import field_error, openai_error_reply
from clipper.frontend.openai_api.requests import (
    Asked,
    as_prompts,
    read_chat,
    read_completion,
    read_embeddings,
)
from clipper.frontend.openai_api.results import Target, embedded, generated
from clipper.frontend.openai_api.streaming import streamed_reply
from clipper.http.reply import Headers, Reply
from clipper.http.request_body import TIMEOUT_HEADER, read_body
from clipper.http.routes import Request, Route, RouteGroup
from clipper.metrics.server_metrics import ServerMetrics
from clipper.security.auth import QueryTokenGuard

__all__ = ["OpenAIApi"]


class OpenAIApi:
    """The OpenAI-compatible routes (see the module's docstring)."""

    def __init__(
        self,
        dataplane: DataPlane,
        snapshot: Callable[[], RegistrySnapshot],
        metrics: ServerMetrics,
        max_body_bytes: int,
        guard: QueryTokenGuard | None = None,
        limits: InputLimits | None = None,
    ) -> None:
        self._dataplane = dataplane
        self._snapshot = snapshot  # () -> the registry snapshot now
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._guard = guard if guard is not None else QueryTokenGuard()
        self._limits = limits if limits is not None else InputLimits()

    def routes(self) -> RouteGroup:
        """The routes, answering errors in OpenAI's shape."""
        return RouteGroup(
            [
                Route("GET", "/v1/models", self._models),
                Route("GET", "/v1/models/{model}", self._model),
                Route("POST", "/v1/completions", self._completions),
                Route("POST", "/v1/chat/completions", self._chat),
                Route("POST", "/v1/embeddings", self._embeddings),
            ],
            openai_error_reply,
            "/v1/",
        )

    # -- models --------------------------------------------------------------------------

    def _listed(self, headers: Headers) -> list[tuple[str, str, float]]:
        """(app, task, created) of each generative app the request may query."""
        snapshot = self._snapshot()
        listed = []
        for name, app in sorted(snapshot.apps.items()):
            record = generative_version(snapshot, app)
            if record is None or record.task is None:
                continue
            try:
                self._guard.require(name, headers)
            except ClipperError:
                continue  # an app its token does not open is not shown
            listed.append((name, record.task, record.created_at))
        return listed

    async def _models(self, request: Request) -> Reply:
        return Reply(200, orjson.dumps(replies.model_list(self._listed(request.headers))))

    async def _model(self, request: Request) -> Reply:
        name = request.params["model"]
        self._guard.require(name, request.headers)
        for listed in self._listed(request.headers):
            if listed[0] == name:
                return Reply(200, orjson.dumps(replies.model_list([listed])["data"][0]))
        raise field_error("model", UnknownApplication(f"The model '{name}' does not exist"))

    def _target(self, name: str, headers: Headers, tasks: tuple[str, ...]) -> Target:
        """The app a request names, once its token is checked and its task fits."""
        self._guard.require(name, headers)
        snapshot = self._snapshot()
        app = snapshot.apps.get(name)
        if app is None:
            raise field_error("model", UnknownApplication(f"The model '{name}' does not exist"))
        record = generative_version(snapshot, app)
        task = None if record is None else record.task
        if task is None or task not in tasks:
            what = f"a {task} model" if task else "not a generative model (no task)"
            raise field_error(
                "model", InvalidInput(f"'{name}' is {what}; this endpoint serves {tasks[0]}")
            )
        return Target(app, task, _budget_us(app, headers))

    # -- completions and chat ----------------------------------------------------------

    async def _completions(self, request: Request) -> Reply:
        body = await read_body(request.headers, request.receive, self._max_body_bytes)
        asked = read_completion(body)
        target = self._target(asked.model, request.headers, (TEXT_GENERATION,))
        return await self._generate(target, asked, replies.Kind(chat=False))

    async def _chat(self, request: Request) -> Reply:
        body = await read_body(request.headers, request.receive, self._max_body_bytes)
        asked = read_chat(body)
        target = self._target(asked.model, request.headers, (CHAT, TEXT_GENERATION))
        if target.task != CHAT:
            asked = as_prompts(asked)
        return await self._generate(target, asked, replies.Kind(chat=True))

    def _buffers(self, asked: Asked) -> list[InputBuffer]:
        return [
            encode_input(choice.to_json().decode(), InputType.STRINGS, self._limits)
            for choice in asked.choices
        ]

    async def _generate(self, target: Target, asked: Asked, kind: replies.Kind) -> Reply:
        started = time.monotonic()
        deadline = started + target.budget_us / 1e6
        reply_id = kind.prefix + secrets.token_hex(12)
        buffers = self._buffers(asked)
        if asked.stream:
            return await streamed_reply(
                self._dataplane, self._metrics, target, asked, kind, reply_id, buffers[0],
                deadline,
            )  # fmt: skip
        name = target.app.name
        predictions = await self._dataplane.predict(name, buffers, None, deadline)
        observe_answers(self._metrics, name, predictions, time.monotonic() - started)
        results = [generated(p, asked.stop, target) for p in predictions]
        body = replies.completion(kind, reply_id, name, results, asked.n)
        return Reply(200, orjson.dumps(body))

    # -- embeddings ------------------------------------------------------------------------

    async def _embeddings(self, request: Request) -> Reply:
        body = await read_body(request.headers, request.receive, self._max_body_bytes)
        asked = read_embeddings(body)
        target = self._target(asked.model, request.headers, (EMBEDDING,))
        started = time.monotonic()
        buffers: list[InputBuffer] = [
            encode_input(text, InputType.STRINGS, self._limits) for text in asked.texts
        ]
        name = target.app.name
        predictions = await self._dataplane.predict(
            name, buffers, None, started + target.budget_us / 1e6
        )
        observe_answers(self._metrics, name, predictions, time.monotonic() - started)
        answers = [embedded(prediction, target) for prediction in predictions]
        return Reply(200, orjson.dumps(replies.embeddings(name, answers, asked.base64)))


def generative_version(snapshot: RegistrySnapshot, app: AppRecord) -> ModelVersionRecord | None:
    """The version that says what an app does (its task): its first linked model's current
    one; None for an app without one, or not of `strings`."""
    linked = snapshot.links.get(app.name, ())
    current = snapshot.current_versions.get(linked[0]) if linked else None
    if current is None or app.input_type is not InputType.STRINGS:
        return None
    return snapshot.versions.get(ModelId(linked[0], current))


def _budget_us(app: AppRecord, headers: Headers) -> int:
    """The app's SLO, or a shorter `Clipper-Timeout-Us`."""
    budget = app.latency_slo_us
    for name, value in headers:
        if name == TIMEOUT_HEADER:
            if not value.isdigit() or int(value) <= 0:
                raise InvalidInput("Clipper-Timeout-Us must be a positive integer")
            budget = min(budget, int(value))
    return budget
