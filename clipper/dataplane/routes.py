"""Routes of apps that are not a plain single model: a selection policy or a pipeline.

An app with policy `single` and no pipeline has no route: its queries take the
dataplane's direct path, exactly as before. Routes are rebuilt from every registry
snapshot; a route whose policy did not change keeps its in-memory state (newer than the
registry's, which is written behind), a new one loads the persisted state.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clipper.core.exceptions import InvalidRequest
from clipper.core.records import AppRecord, RegistrySnapshot
from clipper.core.types import ModelId
from clipper.dataplane.model_serving import ModelServing
from clipper.dataplane.prediction import ModelRef
from clipper.metrics.server_metrics import ServerMetrics
from clipper.selection import PolicyConfig, configure
from clipper.selection.base import PolicyState
from clipper.selection.book import StateBook

__all__ = ["AppRoute", "build_routes", "transient_route"]

log = logging.getLogger("clipper.dataplane")


@dataclass(slots=True)
class AppRoute:
    """Everything needed to answer an app's queries under its policy or pipeline.

    `arms` are the linked models whose current version is registered (sorted, as links
    are); `servings` and `labels` give each arm's current version. `pipeline` holds the
    servings of a pipeline's steps in order (empty for a policy route; None when a step
    has no current version). `dirty` is set when the state changed since it was persisted.
    """

    app: AppRecord
    config: PolicyConfig
    book: StateBook
    rng: random.Random
    arms: tuple[str, ...] = ()
    servings: dict[str, ModelServing] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    use_cache: dict[str, bool] = field(default_factory=dict)
    counters: dict[str, Any] = field(default_factory=dict)
    pipeline: tuple[ModelServing, ...] | None = ()
    dirty: bool = False

    @property
    def is_pipeline(self) -> bool:
        """True for a pipeline app."""
        return bool(self.app.pipeline)

    def version_of(self, name: str) -> tuple[ModelRef, str]:
        """How to ask the route's current version of model `name` (with its cache choice;
        under a canary rollout, its split decides which version answers)."""
        model_id = self.servings[name].model_id
        app = self.app
        ref = ModelRef(model_id.name, self.use_cache[name], app.show_model_errors, app.priority,
                       follow_rollout=True)  # fmt: skip
        return ref, model_id.version

    def learn(self, uid: int | None, learn: Callable[[PolicyState], PolicyState]) -> None:
        """Update the state (global, and the user's when per user) and mark it dirty."""
        self.book.update(uid, learn)
        self.dirty = True


def build_routes(
    snapshot: RegistrySnapshot,
    servings: Mapping[ModelId, ModelServing],
    previous: Mapping[str, AppRoute],
    metrics: ServerMetrics | None,
) -> dict[str, AppRoute]:
    """A route for every app with a non-single policy or a pipeline."""
    routes = {}
    for name, app in snapshot.apps.items():
        if app.policy == "single" and not app.pipeline:
            continue
        try:
            config = configure(app.policy, app.policy_params)
        except InvalidRequest as exc:
            log.error("app %s: policy %s is invalid (%s); using single", name, app.policy, exc)
            config = configure("single", {})
        route = _carry_over(previous.get(name), app, config, snapshot)
        _bind_models(route, snapshot, servings, metrics)
        routes[name] = route
    return routes


def transient_route(
    app: AppRecord, snapshot: RegistrySnapshot, servings: Mapping[ModelId, ModelServing]
) -> AppRoute:
    """A throwaway route for an app without one (policy `single`, no pipeline): its first
    linked model, for feedback; learns nothing and is never persisted."""
    try:
        config = configure(app.policy, app.policy_params)
    except InvalidRequest:
        config = configure("single", {})
    route = AppRoute(app, config, StateBook(), random.Random())
    _bind_models(route, snapshot, servings, None)
    route.arms = route.arms[:1]
    return route


def _carry_over(
    old: AppRoute | None, app: AppRecord, config: PolicyConfig, snapshot: RegistrySnapshot
) -> AppRoute:
    """Keep the learned state of an unchanged policy; else load the persisted one."""
    if old is not None and old.config.name == config.name:
        book, rng, dirty = old.book, old.rng, old.dirty
        book.per_user, book.max_users = config.per_user, config.max_users
    else:
        blob = snapshot.policy_states.get(app.name)
        book = StateBook.from_bytes(blob, config.name, config.per_user, config.max_users)
        rng, dirty = random.Random(config.seed), False
        if book.reset_because is not None:  # persisted broken: the fresh state replaces it
            log.warning("app %s: its %s policy state was broken (%s); starting afresh",
                        app.name, config.name, book.reset_because)  # fmt: skip
            dirty = True
    return AppRoute(app, config, book, rng, dirty=dirty)


def _bind_models(
    route: AppRoute,
    snapshot: RegistrySnapshot,
    servings: Mapping[ModelId, ModelServing],
    metrics: ServerMetrics | None,
) -> None:
    """Point the route at the current version of each linked model (or pipeline step)."""
    app_name = route.app.name
    names = route.app.pipeline or snapshot.links.get(app_name, ())
    for name in names:
        current = snapshot.current_versions.get(name)
        serving = servings.get(ModelId(name, current)) if current else None
        if serving is None:
            continue
        record = snapshot.versions.get(serving.model_id)
        route.servings[name] = serving
        route.labels[name] = str(serving.model_id)
        route.use_cache[name] = route.app.cache_enabled and (record is None or record.cache_enabled)
        if metrics is not None:
            route.counters[name] = metrics.app_model_queries.labels(app_name, name, current)
    if route.is_pipeline:
        steps = tuple(route.servings[name] for name in names if name in route.servings)
        route.pipeline = steps if len(steps) == len(names) else None
        last = names[-1]
        route.arms = (last,) if last in route.servings else ()
    else:
        route.arms = tuple(name for name in names if name in route.servings)
