"""The transport-agnostic query path: app -> model version -> batch queue -> replica."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

from clipper.batching.queue import PendingQuery
from clipper.dataplane.model_serving import Clock, ModelServing
from clipper.exceptions import (
    ModelError,
    ReplicaCrashed,
    ReplicaError,
    UnknownApplication,
    UnknownVersion,
)
from clipper.management.records import AppRecord, RegistrySnapshot
from clipper.outputs import parse_output_string
from clipper.rpc.protocol import Register
from clipper.rpc.server import WorkerChannel
from clipper.types import ModelId

__all__ = ["DataPlane", "Prediction"]

log = logging.getLogger("clipper.dataplane")

NO_MODELS = "No connected models found for query"
SLO_MISSED = "Failed to retrieve a prediction response within the specified latency SLO"
DEFAULT_SLO_S = 0.1


@dataclass(frozen=True, slots=True)
class Prediction:
    """One answer: a model's output, or the app's default output and why."""

    query_id: int
    output: Any
    is_default: bool = False
    explanation: str | None = None


class _DeadlinePassed(ReplicaError):
    """Raised into a query's future by its deadline timer."""


class DataPlane:
    """Routes queries to model versions; owns one ModelServing per registered version."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._snapshot = RegistrySnapshot()
        self._serving: dict[ModelId, ModelServing] = {}
        self._defaults: dict[str, Any] = {}
        self._query_ids = itertools.count(1)
        self.ready = False

    # -- registry view ---------------------------------------------------------------

    def apply(self, snapshot: RegistrySnapshot) -> list[ModelServing]:
        """Adopt a new registry snapshot; return the ModelServings to close (removed)."""
        self._snapshot = snapshot
        self._defaults = {
            name: parse_output_string(app.default_output) for name, app in snapshot.apps.items()
        }
        removed = [s for mid, s in self._serving.items() if mid not in snapshot.versions]
        for serving in removed:
            del self._serving[serving.model_id]
        for model_id, record in snapshot.versions.items():
            slo_s = self._slo_for_model(model_id.name)
            serving = self._serving.get(model_id)
            if serving is None:
                self._serving[model_id] = ModelServing(
                    model_id, record.input_type, record.batch_size, slo_s, self._clock
                )
            else:
                serving.slo_s = slo_s
        return removed

    def _slo_for_model(self, model_name: str) -> float:
        slos = [
            self._snapshot.apps[app].latency_slo_us / 1e6
            for app, models in self._snapshot.links.items()
            if model_name in models and app in self._snapshot.apps
        ]
        return min(slos) if slos else DEFAULT_SLO_S

    def app(self, name: str) -> AppRecord | None:
        """The registered app, or None."""
        return self._snapshot.apps.get(name)

    def serving(self, model_id: ModelId) -> ModelServing | None:
        """The ModelServing of a version, or None."""
        return self._serving.get(model_id)

    # -- replicas ---------------------------------------------------------------------

    def attach(self, channel: WorkerChannel, message: Register) -> str | None:
        """Accept a worker's registration, or return why it is refused."""
        model_id = ModelId(message.model, message.version)
        serving = self._serving.get(model_id)
        if serving is None:
            return f"model version {model_id} is not registered"
        if message.input_type != serving.input_type.value:
            return (
                f"worker input type {message.input_type!r} does not match the registered "
                f"{serving.input_type.value!r}"
            )
        if message.replica in serving.replicas:
            return f"replica {message.replica} of {model_id} is already connected"
        serving.attach(message.replica, channel)
        log.info("replica %s connected (pid %d)", channel.name, message.pid)
        return None

    def detach(self, channel: WorkerChannel) -> None:
        """Forget a replica whose connection closed."""
        registration = channel.registration
        if registration is None:
            return
        serving = self._serving.get(ModelId(registration.model, registration.version))
        if serving is not None:
            serving.detach(channel)
        log.warning("replica %s disconnected", channel.name)

    # -- queries ----------------------------------------------------------------------

    def resolve_model(self, app: AppRecord, version: str | None) -> ModelServing | None:
        """The model version an app's query goes to; None when the app has no model."""
        linked = self._snapshot.links.get(app.name, ())
        if not linked:
            return None
        model_name = linked[0]
        if version is None:
            current = self._snapshot.current_versions.get(model_name)
            return self._serving.get(ModelId(model_name, current)) if current else None
        serving = self._serving.get(ModelId(model_name, version))
        if serving is None:
            raise UnknownVersion(
                f"Requested version: {version} does not exist for model: {model_name}"
            )
        return serving

    async def predict(
        self, app_name: str, buffers: list[bytes], version: str | None, deadline: float
    ) -> list[Prediction]:
        """Answer each input by its deadline, with a model output or the default."""
        app = self._snapshot.apps.get(app_name)
        if app is None:
            raise UnknownApplication(f"No application named {app_name!r}")
        serving = self.resolve_model(app, version)
        if serving is None:
            return [self._default(app_name, NO_MODELS) for _ in buffers]
        loop = asyncio.get_running_loop()
        queries = []
        for buffer in buffers:
            future: asyncio.Future[Any] = loop.create_future()
            query = PendingQuery(next(self._query_ids), buffer, deadline, future)
            serving.submit(query)
            queries.append(query)
        timer = loop.call_later(max(0.0, deadline - self._clock()), _expire, queries)
        try:
            return [await self._answer(app_name, serving, query) for query in queries]
        finally:
            timer.cancel()

    async def _answer(
        self, app_name: str, serving: ModelServing, query: PendingQuery
    ) -> Prediction:
        try:
            output = await query.future
        except _DeadlinePassed:
            reason = SLO_MISSED if serving.ready_replicas else NO_MODELS
            return self._default(app_name, reason, query.query_id)
        except ModelError as exc:
            return self._default(app_name, f"Model error: {exc}", query.query_id)
        except ReplicaCrashed as exc:
            return self._default(app_name, f"Replica crashed: {exc}", query.query_id)
        return Prediction(query.query_id, output)

    def _default(self, app_name: str, explanation: str, query_id: int | None = None) -> Prediction:
        if query_id is None:
            query_id = next(self._query_ids)
        return Prediction(query_id, self._defaults.get(app_name), True, explanation)


def _expire(queries: list[PendingQuery]) -> None:
    for query in queries:
        if not query.future.done():
            query.future.set_exception(_DeadlinePassed())
