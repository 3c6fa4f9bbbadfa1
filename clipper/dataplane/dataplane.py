"""The transport-agnostic query path: app -> model version -> cache -> batch queue -> replica."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from clipper.batching.queue import PendingQuery
from clipper.cache import PredictionCache
from clipper.dataplane.model_serving import BatchPolicy, Clock, ModelServing
from clipper.exceptions import (
    DeadlineExceeded,
    ModelError,
    ModelNotFound,
    ReplicaCrashed,
    UnknownApplication,
    UnknownVersion,
)
from clipper.management.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.metrics import ServerMetrics
from clipper.outputs import parse_output_string
from clipper.rpc.protocol import Register
from clipper.rpc.server import WorkerChannel
from clipper.types import ModelId

__all__ = ["NO_MODELS", "SLO_MISSED", "DataPlane", "Prediction"]

log = logging.getLogger("clipper.dataplane")

NO_MODELS = "No connected models found for query"
SLO_MISSED = "Failed to retrieve a prediction response within the specified latency SLO"
DEFAULT_SLO_S = 0.1
DEFAULT_CACHE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Prediction:
    """One answer: a model's output, or the app's default output and why."""

    query_id: int
    output: Any
    is_default: bool = False
    explanation: str | None = None


class DataPlane:
    """Routes queries to model versions; owns one ModelServing per registered version.

    Per input: a cache hit answers at once; an identical computation already in flight is
    shared; otherwise a new computation is queued. Computations are resolved only by the
    model side, so answers that arrive after a client's deadline still fill the cache.
    """

    def __init__(
        self,
        metrics: ServerMetrics | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        clock: Clock = time.monotonic,
    ) -> None:
        self._clock = clock
        self._metrics = metrics
        self._snapshot = RegistrySnapshot()
        self._serving: dict[ModelId, ModelServing] = {}
        self._defaults: dict[str, Any] = {}
        self._query_ids = itertools.count(1)
        self.cache = PredictionCache(cache_bytes)
        self._in_flight: dict[tuple[ModelId, bytes], asyncio.Future[Any]] = {}
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
            self.cache.drop_model(serving.model_id)
        for model_id, record in snapshot.versions.items():
            policy = self._batch_policy(record)
            existing = self._serving.get(model_id)
            if existing is None:
                metrics = self._metrics.for_model(*_labels(model_id)) if self._metrics else None
                self._serving[model_id] = ModelServing(
                    model_id, record.input_type, policy, metrics, self._clock
                )
            elif existing.policy != policy:
                existing.set_policy(policy)
        return removed

    def _batch_policy(self, record: ModelVersionRecord) -> BatchPolicy:
        return BatchPolicy(
            batch_size=record.batch_size,
            wait_timeout_s=record.batch_wait_timeout_us / 1e6,
            max_in_flight=record.max_in_flight,
            slo_s=self._slo_for_model(record.name),
        )

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

    def app_ready(self, app_name: str) -> bool:
        """Every model linked to the app has a ready replica of its current version."""
        for model_name in self._snapshot.links.get(app_name, ()):
            current = self._snapshot.current_versions.get(model_name)
            serving = self._serving.get(ModelId(model_name, current)) if current else None
            if serving is None or not serving.ready_replicas:
                return False
        return True

    def all_ready(self) -> bool:
        """The server is started and every app is ready."""
        return self.ready and all(self.app_ready(app) for app in self._snapshot.apps)

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

    async def drain_replica(self, model_id: ModelId, replica: int, timeout_s: float) -> None:
        """Let a replica finish its in-flight batches, then tell its worker to exit."""
        serving = self._serving.get(model_id)
        handle = serving.replicas.get(replica) if serving is not None else None
        if serving is None or handle is None:
            return
        await serving.drain(replica, timeout_s)
        handle.channel.shutdown()

    async def drain_model(self, model_id: ModelId, timeout_s: float) -> None:
        """Drain every replica of a model version."""
        serving = self._serving.get(model_id)
        if serving is not None:
            replicas = list(serving.replicas)
            await asyncio.gather(*(self.drain_replica(model_id, r, timeout_s) for r in replicas))

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
        return await self._predict_on(serving, app.cache_enabled, app_name, buffers, deadline)

    async def predict_model(
        self, model_name: str, version: str | None, buffers: list[bytes], deadline: float
    ) -> list[Prediction]:
        """Query a model version directly (no app): for the Open Inference Protocol.

        Failed inputs come back as default predictions with output None and the reason.
        """
        if version is None:
            version = self._snapshot.current_versions.get(model_name)
            if version is None:
                raise ModelNotFound(f"No model with name '{model_name}'")
        serving = self._serving.get(ModelId(model_name, version))
        if serving is None:
            if model_name not in self._snapshot.current_versions:
                raise ModelNotFound(f"No model with name '{model_name}'")
            raise UnknownVersion(
                f"Requested version: {version} does not exist for model: {model_name}"
            )
        return await self._predict_on(serving, True, None, buffers, deadline)

    async def _predict_on(
        self,
        serving: ModelServing,
        app_cache_enabled: bool,
        app_name: str | None,
        buffers: list[bytes],
        deadline: float,
    ) -> list[Prediction]:
        query_ids = [next(self._query_ids) for _ in buffers]
        record = self._snapshot.versions.get(serving.model_id)
        use_cache = app_cache_enabled and (record is None or record.cache_enabled)
        computations = self._computations(serving, use_cache, buffers, query_ids, deadline)
        pending = [future for future in computations if not future.done()]
        if pending:
            await self._wait_all(pending, deadline)
        return [
            self._answer(app_name, serving, query_id, future)
            for query_id, future in zip(query_ids, computations, strict=True)
        ]

    def _computations(
        self,
        serving: ModelServing,
        use_cache: bool,
        buffers: list[bytes],
        query_ids: list[int],
        deadline: float,
    ) -> list[asyncio.Future[Any]]:
        """One future per input: a cached answer, a shared in-flight one, or a new one."""
        loop = asyncio.get_running_loop()
        metrics = serving.metrics
        futures: list[asyncio.Future[Any]] = []
        fresh: list[PendingQuery] = []
        for query_id, buffer in zip(query_ids, buffers, strict=True):
            key = (serving.model_id, buffer)
            if use_cache:
                cached = self.cache.get(serving.model_id, buffer)
                if cached is not PredictionCache.MISSING:
                    done: asyncio.Future[Any] = loop.create_future()
                    done.set_result(cached)
                    futures.append(done)
                    if metrics:
                        metrics.cache_hits.inc()
                    continue
                shared = self._in_flight.get(key)
                if shared is not None:
                    futures.append(shared)
                    continue
                if metrics:
                    metrics.cache_misses.inc()
            future = loop.create_future()
            future.add_done_callback(partial(self._computed, key, use_cache))
            if use_cache:
                self._in_flight[key] = future
            fresh.append(PendingQuery(query_id, buffer, deadline, future))
            futures.append(future)
        if fresh:
            serving.submit(fresh)
        return futures

    def _computed(self, key: tuple[ModelId, bytes], use_cache: bool, future: Any) -> None:
        """A computation finished: retire it from in-flight, cache a real output."""
        if use_cache and self._in_flight.get(key) is future:
            del self._in_flight[key]
        if future.cancelled() or future.exception() is not None:
            return
        if use_cache and key[0] in self._serving:
            self.cache.put(key[0], key[1], future.result())

    async def _wait_all(self, futures: list[asyncio.Future[Any]], deadline: float) -> None:
        """Wait until every future is done or the deadline passes: one waiter, one timer."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        remaining = len(futures)

        def on_done(_: object) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0 and not waiter.done():
                waiter.set_result(None)

        def on_deadline() -> None:
            if not waiter.done():
                waiter.set_result(None)

        for future in futures:
            future.add_done_callback(on_done)
        timer = loop.call_later(max(0.0, deadline - self._clock()), on_deadline)
        try:
            await waiter
        finally:
            timer.cancel()
            for future in futures:
                future.remove_done_callback(on_done)

    def _answer(
        self,
        app_name: str | None,
        serving: ModelServing,
        query_id: int,
        future: asyncio.Future[Any],
    ) -> Prediction:
        if not future.done():
            reason = SLO_MISSED if serving.ready_replicas else NO_MODELS
            return self._default(app_name, reason, query_id)
        error = future.exception()
        if error is None:
            return Prediction(query_id, future.result())
        if isinstance(error, DeadlineExceeded):
            reason = SLO_MISSED if serving.ready_replicas else NO_MODELS
        elif isinstance(error, ModelError):
            reason = f"Model error: {error}"
        elif isinstance(error, ReplicaCrashed):
            reason = f"Replica crashed: {error}"
        else:
            reason = f"{type(error).__name__}: {error}"
        return self._default(app_name, reason, query_id)

    def _default(
        self, app_name: str | None, explanation: str, query_id: int | None = None
    ) -> Prediction:
        if query_id is None:
            query_id = next(self._query_ids)
        output = self._defaults.get(app_name) if app_name is not None else None
        return Prediction(query_id, output, True, explanation)


def _labels(model_id: ModelId) -> tuple[str, str]:
    return model_id.name, model_id.version
