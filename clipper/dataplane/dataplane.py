"""The transport-agnostic query path: app -> model version -> cache -> batch queue -> replica.

An app with the `single` policy and no pipeline (Clipper's one linked model) takes the
direct path below. An app under another selection policy, or a pipeline, has a route
(`routes.py`) and is answered by `policy_path.py` or `pipeline.py`, which ask each model
version through the same computation table (cache, coalescing, batching, deadlines).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Iterator, Mapping
from functools import partial
from typing import Any

from clipper.batching.queue import PendingQuery
from clipper.core.exceptions import ModelNotFound, Overloaded, UnknownApplication, UnknownVersion
from clipper.core.outputs import parse_output_string
from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.core.types import InputBuffer, ModelId
from clipper.dataplane.answers import Answers, AnswersCallback, answers_or_future, deliver
from clipper.dataplane.cache import PredictionCache
from clipper.dataplane.cold_starts import ColdStarts
from clipper.dataplane.computations import (
    NO_MODELS,
    SLO_MISSED,
    ComputationTable,
    failure_reason,
    slo_missed,
)
from clipper.dataplane.feedback import FeedbackPath, FeedbackRequest, LearnHook
from clipper.dataplane.model_serving import BatchPolicy, Clock, ModelServing
from clipper.dataplane.pipeline import PipelinePath
from clipper.dataplane.policy_path import PolicyPath
from clipper.dataplane.prediction import ModelRef, Prediction
from clipper.dataplane.query_log import QueryLog
from clipper.dataplane.rollout_path import RolloutPath, SplitRoute
from clipper.dataplane.rollout_split import RolloutSplit
from clipper.dataplane.routes import AppRoute, build_routes, transient_route
from clipper.dataplane.streams import NO_LIMITS, PieceStream, StreamLimits
from clipper.metrics.server_metrics import PolicySample, ServerMetrics
from clipper.rpc.protocol import Register
from clipper.rpc.server import WorkerChannel
from clipper.selection.base import Feedback
from clipper.selection.book import StateBook

__all__ = [
    "NO_MODELS",
    "SLO_MISSED",
    "Answers",
    "AnswersCallback",
    "DataPlane",
    "FeedbackRequest",
    "ModelRef",
    "PieceStream",
    "Prediction",
    "StreamLimits",
    "slo_missed",
]

log = logging.getLogger("clipper.dataplane")

DEFAULT_SLO_S = 0.1
DEFAULT_CACHE_BYTES = 32 * 1024 * 1024


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
        query_log: QueryLog | None = None,
        query_ids: Iterator[int] | None = None,
    ) -> None:
        """`query_ids` numbers the answers (default 1, 2, ...; several query frontends
        each take every Nth, so a query id says which frontend answered)."""
        self._clock = clock
        self._metrics = metrics
        self._snapshot = RegistrySnapshot()
        self._serving: dict[ModelId, ModelServing] = {}
        self._defaults: dict[str, Any] = {}
        self._query_ids = query_ids if query_ids is not None else itertools.count(1)
        self.cache = PredictionCache(cache_bytes)
        self._table = ComputationTable(self.cache, self._serving, clock)
        self._routes: dict[str, AppRoute] = {}
        # Apps without a route, resolved once per snapshot: the current version (None
        # without a linked model), and whether its queries use the cache.
        # app -> (current version, whether it uses the cache, app.show_model_errors,
        # app.priority)
        self._direct: dict[str, tuple[ModelServing | None, bool, bool, int]] = {}
        self._rejecting: frozenset[str] = frozenset()  # apps whose refused queries raise
        # Models under a canary rollout, and the apps (without a route) whose first linked
        # model is one of them: those take the rollout path, not the direct one.
        self._splits: dict[str, RolloutSplit] = {}
        self._split_apps: dict[str, SplitRoute] = {}
        self.query_log = query_log or QueryLog()
        ask = self.predict_then  # the paths of routed apps ask their models through it too
        self._policies = PolicyPath(ask, self.query_log, self._default, metrics, clock)
        self._pipelines = PipelinePath(ask, self.query_log, self._default)
        self._feedback = FeedbackPath(
            ask, self.query_log, self._pipelines, metrics, clock, self._splits.get
        )
        self._rollouts = RolloutPath(
            self._table, self._query_ids, self._answer, clock, self.query_log
        )
        self._routed: set[asyncio.Future[list[Prediction]]] = set()
        self.cold_starts = ColdStarts()
        """The versions scaled to zero that queries asked for (the autoscaler takes them)."""
        self.ready = False
        if metrics is not None:
            metrics.watch_policies(self.policy_samples)

    def trace_computations(
        self,
        make: Callable[[PredictionCache, Mapping[ModelId, object], Clock], ComputationTable],
    ) -> None:
        """Replace the computation table by `make(cache, versions, clock)` (clipper.tracing's
        subclass, when tracing is on); called before the first query, nothing in flight."""
        self._table = make(self.cache, self._serving, self._clock)

    # -- registry view ---------------------------------------------------------------

    def apply(self, snapshot: RegistrySnapshot) -> list[ModelServing]:
        """Adopt a new registry snapshot; return the ModelServings to close (removed)."""
        self._snapshot = snapshot
        self._defaults = {
            name: parse_output_string(app.default_output) for name, app in snapshot.apps.items()
        }
        self._rejecting = frozenset(
            name for name, app in snapshot.apps.items() if app.overload == "reject"
        )
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
            serving_metrics = self._serving[model_id].metrics
            if serving_metrics is not None:
                serving_metrics.latency_slo.set(policy.slo_s)
        self._routes = build_routes(snapshot, self._serving, self._routes, self._metrics)
        if self._metrics is not None:
            for name, app in snapshot.apps.items():
                self._metrics.for_app(name).set_slo(app.latency_slo_us / 1e6)
        self._resolve_direct()
        return removed

    def _resolve_direct(self) -> None:
        """The direct path (or the rollout path) of every app without a route."""
        self._direct, self._split_apps = {}, {}
        for name, app in self._snapshot.apps.items():
            if name in self._routes:
                continue
            split_route = self._split_route(app)
            if split_route is not None:
                self._split_apps[name] = split_route
                continue
            current = self.resolve_model(app, None)
            cached = current is not None and self._cache_on(app.cache_enabled, current)
            self._direct[name] = (current, cached, app.show_model_errors, app.priority)

    def _split_route(self, app: AppRecord) -> SplitRoute | None:
        """The rollout path of an app whose first linked model is under rollout (None
        while either version is not registered)."""
        linked = self._snapshot.links.get(app.name, ())
        split = self._splits.get(linked[0]) if linked else None
        if split is None:
            return None
        baseline = self._serving.get(ModelId(split.model, split.baseline))
        canary = self._serving.get(ModelId(split.model, split.canary))
        if baseline is None or canary is None:
            return None
        cached = partial(self._cache_on, app.cache_enabled)
        return SplitRoute(app.name, split, baseline, canary, cached(baseline), cached(canary),
                          app.show_model_errors, app.priority)  # fmt: skip

    def _model_split_route(self, ref: ModelRef, version: str | None) -> SplitRoute | None:
        """The rollout path of a policy's or pipeline's query for the current version of a
        model under rollout (None otherwise: it asks the version itself)."""
        split = self._splits.get(ref.model_name) if ref.follow_rollout else None
        if split is None or version != split.baseline:
            return None
        baseline = self._serving.get(ModelId(split.model, split.baseline))
        canary = self._serving.get(ModelId(split.model, split.canary))
        if baseline is None or canary is None:
            return None
        cached = ref.use_cache is not False
        baseline_cached = cached and self._cache_on(True, baseline)
        canary_cached = cached and self._cache_on(True, canary)
        return SplitRoute(None, split, baseline, canary, baseline_cached, canary_cached,
                          ref.show_errors, ref.priority)  # fmt: skip

    # -- canary rollouts ----------------------------------------------------------------

    def start_split(self, split: RolloutSplit) -> None:
        """Split the traffic of `split.model`'s apps as `split` says, from now on."""
        self._splits[split.model] = split
        self._resolve_direct()

    def end_split(self, model_name: str) -> None:
        """Send all of the model's traffic to its current version again."""
        if self._splits.pop(model_name, None) is not None:
            self._resolve_direct()

    def split_of(self, model_name: str) -> RolloutSplit | None:
        """The model's rollout split, or None."""
        return self._splits.get(model_name)

    def split_models(self) -> list[str]:
        """The models under a rollout split."""
        return list(self._splits)

    def _cache_on(self, app_cache_enabled: bool, serving: ModelServing) -> bool:
        """Whether queries to a version use the cache (both the app and version allow it)."""
        record = self._snapshot.versions.get(serving.model_id)
        return app_cache_enabled and (record is None or record.cache_enabled)

    def _batch_policy(self, record: ModelVersionRecord) -> BatchPolicy:
        return BatchPolicy(
            batch_size=record.batch_size,
            wait_timeout_s=record.batch_wait_timeout_us / 1e6,
            max_in_flight=record.max_in_flight,
            slo_s=min(slos := self._slos_for_model(record.name)),
            longest_slo_s=max(slos),
            max_queued=record.max_queued,
        )

    def _slos_for_model(self, model_name: str) -> list[float]:
        """The SLOs of the apps that may ask the model (the default SLO when none does)."""
        slos = [
            app.latency_slo_us / 1e6
            for app in self._snapshot.apps.values()
            if model_name in self._models_of(app.name)
        ]
        return slos or [DEFAULT_SLO_S]

    def _models_of(self, app_name: str) -> tuple[str, ...]:
        """The models an app's queries may go to: its pipeline's steps, or its links."""
        app = self._snapshot.apps.get(app_name)
        if app is not None and app.pipeline:
            return app.pipeline
        return self._snapshot.links.get(app_name, ())

    def app(self, name: str) -> AppRecord | None:
        """The registered app, or None."""
        return self._snapshot.apps.get(name)

    def serving(self, model_id: ModelId) -> ModelServing | None:
        """The ModelServing of a version, or None."""
        return self._serving.get(model_id)

    def servings(self) -> list[tuple[ModelId, ModelServing]]:
        """Every registered version's ModelServing."""
        return list(self._serving.items())

    def set_scale_to_zero(self, model_ids: Collection[ModelId]) -> None:
        """The versions that may have no replica (autoscaled with `min_replicas` 0): a query
        for one of them with no replica attached asks `cold_starts` for one."""
        for model_id, serving in self._serving.items():
            serving.wake = self.cold_starts.ask if model_id in model_ids else None

    def app_ready(self, app_name: str) -> bool:
        """Every model linked to the app (or step of its pipeline) has a ready replica of
        its current version, or may scale to zero (its next query starts one)."""
        for model_name in self._models_of(app_name):
            current = self._snapshot.current_versions.get(model_name)
            serving = self._serving.get(ModelId(model_name, current)) if current else None
            if serving is None or not (serving.ready_replicas or serving.wake is not None):
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

    def detach(self, channel: WorkerChannel, logged_elsewhere: bool = False) -> None:
        """Forget a replica whose connection closed; log it unless `logged_elsewhere` (the
        end of a worker process the server started is logged where it is seen to exit)."""
        registration = channel.registration
        if registration is None:
            return
        serving = self._serving.get(ModelId(registration.model, registration.version))
        if serving is not None:
            serving.detach(channel)
        if logged_elsewhere:
            log.debug("replica %s disconnected", channel.name)
        elif channel.asked_to_exit:  # a planned stop (drained, scaled down, shutting down)
            log.info("replica %s stopped", channel.name)
        else:
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
        """The model version an app's query goes to; None when the app has no model.

        `version` names a version of the first linked model, or `"model:version"` one of
        any model linked to the app.
        """
        linked = self._snapshot.links.get(app.name, ())
        if not linked:
            return None
        model_name = linked[0]
        if version is not None and ":" in version:
            model_name, version = version.split(":", 1)
            if model_name not in linked and model_name not in app.pipeline:
                raise UnknownVersion(
                    f"Requested model: {model_name} is not linked to application: {app.name}"
                )
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
        self,
        target: str | ModelRef,
        buffers: list[InputBuffer],
        version: str | None,
        deadline: float,
        uid: int | None = None,
        priority: int | None = None,
    ) -> list[Prediction]:
        """`predict_then` awaited: one prediction per input, by the deadline."""
        answers = answers_or_future(
            partial(self.predict_then, target, buffers, version, deadline, uid, priority=priority)
        )
        return answers if isinstance(answers, list) else await answers

    def predict_then(
        self,
        target: str | ModelRef,
        buffers: list[InputBuffer],
        version: str | None,
        deadline: float,
        uid: int | None,
        then: AnswersCallback,
        priority: int | None = None,
    ) -> list[Prediction] | None:
        """Answer each input by its deadline, with a model output or the default: the one
        entry point of every query surface, with no future, task or coroutine of its own.

        `target` is an application's name (a `ModelRef` asks a model version directly).
        An app under a selection policy or a pipeline goes through its route; a query that
        names a `version` bypasses the policy and asks that version directly. Returns the
        answers at once when none has to wait (cache hits, defaults); else None, and `then`
        is called once with the answers by the deadline at the latest (or with the exception
        a routed query raised).

        `priority` (None: the app's class) may lower a query's priority below its app's
        class, never raise it above (`_ranked`); the queries of a routed app, a pipeline or a
        rollout run at their app's class.
        """
        direct = self._direct.get(target) if version is None else None  # type: ignore[arg-type]
        if direct is None:  # a version asked, a routed app, a model, or an unknown one
            if isinstance(target, ModelRef):
                split_route = self._model_split_route(target, version)
                if split_route is not None:  # a route's query for a model under rollout
                    self._run(self._rollouts.predict(split_route, buffers, deadline), then)
                    return None
                model = self._model_serving(target.model_name, version)
                use_model_cache = target.use_cache
                if use_model_cache is None:
                    use_model_cache = self._cache_on(True, model)
                ranked = _ranked(priority, target.priority)
                return self._start_on(
                    model, use_model_cache, None, target.show_errors, buffers, deadline, then,
                    ranked,
                )  # fmt: skip
            app = self._snapshot.apps.get(target)
            if app is None:
                raise UnknownApplication(f"No application named {target!r}")
            route = self._routes.get(target)
            if route is not None and version is None:
                self._run(self._predict_routed(route, buffers, uid, deadline), then)
                return None
            split_route = self._split_apps.get(target) if version is None else None
            if split_route is not None:
                self._run(self._rollouts.predict(split_route, buffers, deadline), then)
                return None
            asked = self.resolve_model(app, version)
            use_cache = asked is not None and self._cache_on(app.cache_enabled, asked)
            direct = (asked, use_cache, app.show_model_errors, app.priority)
        serving, use_cache, show_errors, app_priority = direct
        if serving is None:
            return [self._default(target, NO_MODELS) for _ in buffers]  # type: ignore[arg-type]
        if priority is not None and priority < app_priority:
            app_priority = priority
        return self._start_on(
            serving, use_cache, target, show_errors, buffers, deadline, then, app_priority  # type: ignore[arg-type]
        )  # fmt: skip

    def stream(
        self,
        target: str | ModelRef,
        buffer: InputBuffer,
        version: str | None,
        deadline: float,
        limits: StreamLimits = NO_LIMITS,
    ) -> PieceStream | Prediction | None:
        """One input of an app (or, by a `ModelRef`, of a model version) as a stream of
        pieces (see clipper.dataplane.streams), by the direct path: a Prediction when
        answered at once (no model, refused), None for an app whose queries take a route
        (a policy, a pipeline, a rollout: ask `predict`)."""
        if isinstance(target, ModelRef):
            serving: ModelServing | None = self._model_serving(target.model_name, version)
            app_name, show_errors = None, target.show_errors
            priority = target.priority
        else:
            app = self._snapshot.apps.get(target)
            if app is None:
                raise UnknownApplication(f"No application named {target!r}")
            if version is None and (target in self._routes or target in self._split_apps):
                return None
            serving = self.resolve_model(app, version)
            app_name, show_errors, priority = target, app.show_model_errors, app.priority
        if serving is None:
            return self._default(app_name, NO_MODELS)
        queue = serving.queue  # a stream runs at its app's class
        if priority > queue.lowest:  # above some queued: judged on its class and above
            refused_at = serving.admit_ranked(priority, 1, deadline)
            if refused_at is not None:
                return self._refused(serving, app_name, refused_at, priority)[0]
        elif not serving.admission.admits(queued := len(queue), deadline):
            return self._refused(serving, app_name, queued, priority)[0]
        query_id = next(self._query_ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        query = PendingQuery(query_id, buffer, deadline, future, priority)
        answer = partial(self._answer, app_name, serving, show_errors, query_id, future)
        stream = PieceStream(serving, query, show_errors, answer, limits, self._clock)
        serving.submit_one(query)
        return stream

    def _model_serving(self, model_name: str, version: str | None) -> ModelServing:
        """The serving of a model version asked by name (None: the current version)."""
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
        return serving

    def _run(self, answering: Coroutine[Any, Any, list[Prediction]], then: AnswersCallback) -> None:
        """Answer a query as a task whose outcome goes to `then`."""
        task = asyncio.ensure_future(answering)
        self._routed.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._routed.discard)
        task.add_done_callback(partial(deliver, then))

    async def _predict_routed(
        self, route: AppRoute, buffers: list[InputBuffer], uid: int | None, deadline: float
    ) -> list[Prediction]:
        query_ids = [next(self._query_ids) for _ in buffers]
        path = self._pipelines if route.is_pipeline else self._policies
        return await path.predict(route, buffers, query_ids, uid, deadline)

    def _start_on(
        self,
        serving: ModelServing,
        use_cache: bool,
        app_name: str | None,
        show_errors: bool,
        buffers: list[InputBuffer],
        deadline: float,
        then: AnswersCallback,
        priority: int = 0,
    ) -> list[Prediction] | None:
        if not use_cache and len(buffers) == 1:  # the common query: a computation of its own
            queue = serving.queue
            if priority > queue.lowest:  # above some queued: judged on its class and above
                refused_at = serving.admit_ranked(priority, 1, deadline)
                if refused_at is not None:
                    return self._refused(serving, app_name, refused_at, priority)
            elif not serving.admission.admits(queued := len(queue), deadline):
                return self._refused(serving, app_name, queued, priority)
            query_id = next(self._query_ids)

            def finish_alone() -> None:  # called in a later loop iteration: `alone` is set
                try:
                    answer = self._answer(app_name, serving, show_errors, query_id, alone)
                except Overloaded as exc:  # displaced from the queue, of an app that rejects
                    then(exc)
                    return
                then([answer])

            alone = self._table.start_alone(
                serving, buffers[0], query_id, deadline, finish_alone, priority
            )
            return None
        query_ids = list(itertools.islice(self._query_ids, len(buffers)))
        computations = self._table.start(
            serving, use_cache, buffers, query_ids, deadline, app_name or "", priority
        )
        pending = list(itertools.filterfalse(_is_done, computations))
        if not pending:
            return self._answers(app_name, serving, show_errors, query_ids, computations)

        def finish() -> None:
            try:
                answers = self._answers(app_name, serving, show_errors, query_ids, computations)
            except Overloaded as exc:  # refused inputs of an app that rejects
                then(exc)
                return
            then(answers)

        self._table.when_all(pending, deadline, finish)
        return None

    def _answers(
        self,
        app_name: str | None,
        serving: ModelServing,
        show_errors: bool,
        query_ids: list[int],
        computations: list[asyncio.Future[Any]],
    ) -> list[Prediction]:
        if len(computations) == 1:  # the common query, without a comprehension's frame
            return [self._answer(app_name, serving, show_errors, query_ids[0], computations[0])]
        return [
            self._answer(app_name, serving, show_errors, query_id, future)
            for query_id, future in zip(query_ids, computations, strict=True)
        ]

    def _answer(
        self,
        app_name: str | None,
        serving: ModelServing,
        show_errors: bool,
        query_id: int,
        future: asyncio.Future[Any],
    ) -> Prediction:
        reason = failure_reason(serving, future, query_id, show_errors)
        if reason is None:
            return Prediction(query_id, future.result(), models=serving.models)
        error = future.exception() if future.done() else None
        if isinstance(error, Overloaded) and app_name in self._rejecting:
            raise error
        return self._default(app_name, reason, query_id)

    def _refused(
        self, serving: ModelServing, app_name: str | None, queued: int, priority: int
    ) -> list[Prediction]:
        """A query admission control turned away, answered at once: the app's default
        output, or Overloaded raised for an app whose `overload` is `reject`."""
        error = serving.refuse(app_name or "", queued, priority)
        if app_name in self._rejecting:
            raise error
        return [self._default(app_name, str(error))]

    def _default(
        self, app_name: str | None, explanation: str, query_id: int | None = None
    ) -> Prediction:
        if query_id is None:
            query_id = next(self._query_ids)
        output = self._defaults.get(app_name) if app_name is not None else None
        return Prediction(query_id, output, True, explanation)

    # -- feedback and policy state ---------------------------------------------------------

    async def update(self, app_name: str, request: FeedbackRequest) -> dict[str, Any]:
        """Apply feedback to the app's selection policy; the JSON reply."""
        app = self._snapshot.apps.get(app_name)
        if app is None:
            raise UnknownApplication(f"No application named {app_name!r}")
        route = self._routes.get(app_name)
        if route is None:
            route = transient_route(app, self._snapshot, self._serving)
        return await self._feedback.update(route, request)

    def take_state_resets(self) -> list[tuple[str, str]]:
        """(app, why) for each policy state found broken at load and started afresh since
        the last call (for the registry's events)."""
        resets = []
        for name, route in self._routes.items():
            if route.book.reset_because is not None:
                resets.append((name, route.book.reset_because))
                route.book.reset_because = None
        return resets

    def take_dirty_states(self) -> dict[str, bytes]:
        """The policy states changed since the last call, serialised for the registry
        (write-behind: the caller persists them); they count as clean afterwards."""
        dirty = {}
        for name, route in self._routes.items():
            if route.dirty:
                dirty[name] = route.book.to_bytes(route.config.name)
                route.dirty = False
        return dirty

    def mark_dirty(self, app_name: str) -> None:
        """Have the app's policy state returned by the next `take_dirty_states` again."""
        route = self._routes.get(app_name)
        if route is not None:
            route.dirty = True

    def watch_learning(self, hook: LearnHook | None) -> None:
        """Have `hook` told each feedback a policy learns from here (clipper.frontends)."""
        self._feedback.on_learn = hook

    def learn(self, app_name: str, policy: str, feedback: Feedback) -> bool:
        """Apply feedback judged elsewhere to the app's policy, if it still runs `policy`
        (no hook is told); whether it did."""
        route = self._routes.get(app_name)
        if route is None or route.config.name != policy:
            return False
        observe = route.config.policy.observe
        route.learn(feedback.uid, lambda state: observe(state, feedback))
        return True

    def policy_apps(self) -> list[str]:
        """The apps with a policy route (a policy other than `single`, or a pipeline)."""
        return list(self._routes)

    def policy_book(self, app_name: str) -> tuple[str, StateBook] | None:
        """The app's policy name and its in-memory state book; None without a route."""
        route = self._routes.get(app_name)
        return None if route is None else (route.config.name, route.book)

    def policy_view(self, app_name: str) -> dict[str, dict[str, float]] | None:
        """What the app's policy believes per linked model (weights, posteriors), from
        its in-memory state; None for an app without a policy route."""
        route = self._routes.get(app_name)
        if route is None:
            return None
        return route.config.policy.describe(route.book.global_state, route.arms)

    def policy_samples(self) -> Iterator[PolicySample]:
        """Every number of `policy_view`, for the metrics page."""
        for name in list(self._routes):
            for model, stats in (self.policy_view(name) or {}).items():
                for stat, value in stats.items():
                    yield name, model, stat, value


_is_done = asyncio.Future.done  # computations are asyncio futures: their own (C) `done`


def _ranked(asked: int | None, cap: int) -> int:
    """A query's priority: the one it asked for, at most its app's class (`cap`)."""
    return cap if asked is None or asked > cap else asked


def _labels(model_id: ModelId) -> tuple[str, str]:
    return model_id.name, model_id.version
