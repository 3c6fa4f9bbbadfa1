"""Canary rollouts: a new version takes a model's traffic step by step, judged on the live
traffic, and is promoted or rolled back by itself (README.md#canary-rollouts).

The registry holds each rollout (its plan, step and state), so a restart resumes it at its
step with fresh windows (or aborts it, as its plan says). The data plane holds its split
(clipper.dataplane.rollout_split): the share, and each version's window since the step
began. `RolloutLoop` (a supervised background task of the server) judges every running
rollout each `interval_s` with clipper.control.rollout_analysis: a failed check rolls it
back at once; a step whose time is up with every check passed advances, and the last one
makes the new version current. Each change is one registry transaction with its event.

A paused rollout (`paused_at` set) keeps its split where it is and is not judged; resuming
it moves its step's start on by the pause, so the step's time left is what it was.

With several query frontends (clipper.frontends) each frontend follows the registry's
rollouts with a split of its own; `RolloutLoop`'s `collect` then puts their windows,
merged, in this process's split before each judgement (and once more right after a
warm-up's reset, which resets theirs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from clipper.control.rollout_analysis import (
    CheckState,
    Decision,
    Figures,
    Verdict,
    decide,
    judge,
)
from clipper.control.rollout_plan import RolloutPlan, Step
from clipper.control.service import READY_TIMEOUT_S, ClusterService
from clipper.core.exceptions import ClipperError, Conflict, InvalidRequest, ModelNotFound
from clipper.core.records import RolloutRecord
from clipper.core.types import ModelId, validate_version
from clipper.dataplane.model_serving import ModelServing
from clipper.dataplane.rollout_split import RolloutSplit
from clipper.metrics.rollout_metrics import CheckSample, RolloutSample

__all__ = [
    "RolloutLoop",
    "abort_rollout",
    "check_can_start",
    "pause_rollout",
    "promote_rollout",
    "resume_rollout",
    "resume_rollouts",
    "rollout_samples",
    "rollout_status",
    "start_rollout",
]

log = logging.getLogger("clipper.control")
Clock = Callable[[], float]
Collect = Callable[[RolloutRecord, RolloutSplit], Awaitable[None]]
"""Fills a rollout's split with the windows of the processes that serve its queries."""

PARK_WAIT_S = 5.0
"""How long an ended rollout waits for the version it leaves to answer its queue."""
PARK_POLL_S = 0.02


def check_can_start(service: ClusterService, model: str, version: str | None = None) -> str:
    """The model's current version (the baseline), or why a rollout cannot start."""
    service.refuse_under_rollout(model, "start another")
    baseline = service.registry.get_current_version(model)
    if baseline is None:
        raise InvalidRequest(
            f"model {model} has no current version to roll out against: deploy it plainly"
        )
    if version is not None and version == baseline:
        raise InvalidRequest(f"{model}:{version} is the current version already")
    return baseline


async def start_rollout(
    service: ClusterService,
    model: str,
    version: str,
    plan: RolloutPlan,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> dict[str, Any]:
    """Roll out a registered version of `model` against its current one, under `plan`.
    A version with no replicas gets as many as the current one has, and the rollout
    starts once they are ready. Its status."""
    version = validate_version(version)
    record = service.registry.get_model_version(model, version)
    if record is None:
        raise ModelNotFound(f"No model with name '{model}' and version '{version}'")
    baseline = check_can_start(service, model, version)
    if not record.containerless:
        if record.num_replicas == 0:
            current = service.registry.get_model_version(model, baseline)
            replicas = max(1, current.num_replicas if current is not None else 0)
            service.registry.set_num_replicas(model, version, replicas)
            await service.refresh()
        await service.wait_ready(record.model_id, ready_timeout_s)
    rollout = service.registry.start_rollout(model, version, baseline, plan.to_dict())
    log.info("rollout of %s:%s against %s started", model, version, baseline)
    _enter(service, rollout, plan, rollout.step)
    return rollout_status(service, model) or {}


async def promote_rollout(service: ClusterService, model: str) -> dict[str, Any]:
    """Skip the rest of the model's running rollout: its version becomes current now."""
    record = _running(service, model)
    await _end(service, record, "promoted", "promoted by an operator")
    return rollout_status(service, model) or {}


async def abort_rollout(service: ClusterService, model: str) -> dict[str, Any]:
    """Stop the model's running rollout: all traffic goes back to the current version."""
    record = _running(service, model)
    await _end(service, record, "aborted", "aborted by an operator")
    return rollout_status(service, model) or {}


async def pause_rollout(service: ClusterService, model: str) -> dict[str, Any]:
    """Hold the model's running rollout: its split stays, no step advances or is judged,
    and its step's time left is kept (in the registry, so across a restart too)."""
    record = _running(service, model)
    if not service.registry.pause_rollout(record):
        raise Conflict(f"the rollout of {model}:{record.version} is paused already")
    log.info("rollout of %s:%s paused at step %d", model, record.version, record.step + 1)
    return rollout_status(service, model) or {}


async def resume_rollout(service: ClusterService, model: str) -> dict[str, Any]:
    """Go on with the model's paused rollout, with fresh windows (what the versions did
    while it was paused is not judged) and the time its step had left."""
    record = _running(service, model)
    if not service.registry.resume_rollout(record):
        raise Conflict(f"the rollout of {model}:{record.version} is not paused")
    split = service.dataplane.split_of(model)
    if split is not None:
        split.reset_windows()
    log.info("rollout of %s:%s resumed at step %d", model, record.version, record.step + 1)
    return rollout_status(service, model) or {}


async def resume_rollouts(service: ClusterService) -> None:
    """At start: each running rollout resumes at its step with fresh windows once both
    versions have ready replicas, or is aborted when its plan says `on_restart: abort`.
    A paused one stays paused, its step's time left as it was."""
    for record in service.registry.running_rollouts():
        plan = RolloutPlan.parse(record.plan)
        if plan.on_restart == "abort":
            await _end(service, record, "aborted", "the server restarted (on_restart: abort)")
            continue
        if record.paused_at is not None:
            continue
        service.registry.set_rollout_step(record.rollout_id, record.step)
        service.registry.record_event("rollout_resumed", _detail(record, record.step))
        log.info("rollout of %s:%s resumes at step %d", record.model, record.version,
                 record.step + 1)  # fmt: skip


def rollout_status(service: ClusterService, model: str) -> dict[str, Any] | None:
    """The model's running rollout (else its last one) as JSON; None if it never had one."""
    record = service.registry.latest_rollout(model)
    if record is None:
        return None
    plan = RolloutPlan.parse(record.plan)
    step = plan.steps[min(record.step, len(plan.steps) - 1)]
    status: dict[str, Any] = {
        "model_name": record.model,
        "model_version": record.version,
        "baseline_version": record.baseline,
        "state": record.state,
        "reason": record.reason,
        "step": record.step + 1,
        "steps": len(plan.steps),
        "step_kind": "shadow" if step.shadow else "traffic",
        "share": step.share,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "paused": record.paused_at is not None,
        "paused_at": record.paused_at,
        "plan": plan.to_dict(),
    }
    split = service.dataplane.split_of(model)
    if record.state != "running":
        return status
    if split is None:
        status["waiting_for"] = "ready replicas of both versions"
        return status
    elapsed_s = _elapsed_s(record)
    new, current = _figures(split)
    status.update(
        time_left_s=max(0.0, step.duration_s - elapsed_s),
        retried=split.retried,
        new=_figures_dict(new),
        current=_figures_dict(current),
        checks=[result.to_dict() for result in judge(plan, step, new, current).results],
    )
    return status


def rollout_samples(service: ClusterService) -> list[RolloutSample]:
    """Each running rollout's step, share and checks, for the metrics at scrape time."""
    samples = []
    for record in service.registry.running_rollouts():
        plan = RolloutPlan.parse(record.plan)
        step = plan.steps[min(record.step, len(plan.steps) - 1)]
        split = service.dataplane.split_of(record.model)
        paused = record.paused_at is not None
        sample = RolloutSample(record.model, record.version, record.step + 1, step.share, paused)
        if split is not None:
            new, current = _figures(split)
            checks = tuple(
                CheckSample(
                    r.check.name,
                    r.new,
                    r.current,
                    r.limit,
                    None if r.state is CheckState.WAITING else r.state is CheckState.PASSED,
                )
                for r in judge(plan, step, new, current).results
            )
            sample = RolloutSample(record.model, record.version, record.step + 1, step.share,
                                   paused, new.queries, current.queries, checks,
                                   new.rewarded, current.rewarded)  # fmt: skip
        samples.append(sample)
    return samples


class RolloutLoop:
    """Judges every running rollout each `interval_s` and acts on the decision."""

    def __init__(
        self, service: ClusterService, interval_s: float, collect: Collect | None = None
    ) -> None:
        """`collect`: where the windows come from (None: the data plane's own split)."""
        self.service = service
        self.interval_s = interval_s
        self._collect = collect

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.tick()

    async def tick(self) -> None:
        """One round over the running rollouts."""
        for record in self.service.registry.running_rollouts():
            try:
                await self._tick_one(record)
            except ClipperError as exc:  # changed meanwhile: the next round sees it
                log.warning("rollout of %s:%s: %s", record.model, record.version, exc)

    async def _tick_one(self, record: RolloutRecord) -> None:
        service = self.service
        plan = RolloutPlan.parse(record.plan)
        split = service.dataplane.split_of(record.model)
        if split is None:  # just restarted: resume once both versions can answer
            if _ready(service, record):
                if record.paused_at is None:  # a paused one keeps its step's time
                    service.registry.set_rollout_step(record.rollout_id, record.step)
                _enter(service, record, plan, record.step)
            return
        if record.paused_at is not None:
            return
        step = plan.steps[record.step]
        elapsed_s = time.time() - record.step_started_at
        if elapsed_s < step.warmup_s:
            split.reset_windows()
        if self._collect is not None:
            await self._collect(record, split)
        if elapsed_s < step.warmup_s:
            return
        verdict = judge(plan, step, *_figures(split))
        decision = decide(verdict, elapsed_s, step)
        if decision is Decision.ROLL_BACK:
            await _roll_back(service, record, step, verdict)
        elif decision is Decision.ADVANCE:
            await self._advance(record, plan)

    async def _advance(self, record: RolloutRecord, plan: RolloutPlan) -> None:
        service = self.service
        following = record.step + 1
        if following == len(plan.steps):
            await _end(service, record, "promoted", "every step passed its checks")
            return
        if not service.registry.set_rollout_step(record.rollout_id, following):
            return
        service.registry.record_event("rollout_step", _detail(record, following, plan))
        log.info("rollout of %s:%s: step %d (%s)", record.model, record.version,
                 following + 1, plan.steps[following].describe())  # fmt: skip
        _enter(service, record, plan, following)


async def _roll_back(
    service: ClusterService, record: RolloutRecord, step: Step, verdict: Verdict
) -> None:
    failed = verdict.failed
    reason = f"step {record.step + 1} ({step.describe()}): " + (failed.reason() if failed else "")
    await _end(service, record, "rolled_back", reason, failed.to_dict() if failed else None)


async def _end(
    service: ClusterService,
    record: RolloutRecord,
    state: str,
    reason: str,
    check: dict[str, object] | None = None,
) -> None:
    """End a running rollout (registry, then the data plane's split, then the world)."""
    detail = {**_detail(record, record.step), "reason": reason, "check": check}
    if not service.registry.end_rollout(record, state, reason, detail):
        raise Conflict(f"the rollout of {record.model}:{record.version} has ended already")
    (log.info if state == "promoted" else log.warning)(
        "rollout of %s:%s %s: %s", record.model, record.version, state, reason
    )
    service.dataplane.end_split(record.model)  # traffic follows the registry's current version
    await service.refresh()
    parked = record.baseline if state == "promoted" else record.version
    await _park_when_idle(service, ModelId(record.model, parked))


async def _park_when_idle(service: ClusterService, model_id: ModelId) -> None:
    """Scale the version that no longer gets traffic to zero replicas (still registered)
    once it has answered what was queued for it (bounded by `PARK_WAIT_S`)."""
    serving = service.dataplane.serving(model_id)
    for _ in range(round(PARK_WAIT_S / PARK_POLL_S)):  # bounded: a stuck batch parks anyway
        if serving is None or _idle(serving):
            break
        await asyncio.sleep(PARK_POLL_S)
    record = service.registry.get_model_version(model_id.name, model_id.version)
    if record is None or record.containerless or record.num_replicas == 0:
        return
    service.registry.set_num_replicas(model_id.name, model_id.version, 0)
    await service.refresh()


def _idle(serving: ModelServing) -> bool:
    return not len(serving.queue) and not any(h.in_flight for h in serving.replicas.values())


def _enter(service: ClusterService, record: RolloutRecord, plan: RolloutPlan, index: int) -> None:
    """Put the data plane's split of the rollout at step `index`, with fresh windows."""
    step = plan.steps[index]
    split = service.dataplane.split_of(record.model)
    if split is None:
        split = RolloutSplit(record.model, record.baseline, record.version)
        split.enter_step(step.share, step.shadow)
        service.dataplane.start_split(split)
    else:
        split.enter_step(step.share, step.shadow)


def _elapsed_s(record: RolloutRecord) -> float:
    """How long the rollout's step has run (a paused one's clock stopped when paused)."""
    now = time.time() if record.paused_at is None else record.paused_at
    return max(0.0, now - record.step_started_at)


def _ready(service: ClusterService, record: RolloutRecord) -> bool:
    for version in (record.baseline, record.version):
        serving = service.dataplane.serving(ModelId(record.model, version))
        if serving is None or not serving.ready_replicas:
            return False
    return True


def _running(service: ClusterService, model: str) -> RolloutRecord:
    record = service.registry.latest_rollout(model)
    if record is None or record.state != "running":
        raise Conflict(f"model {model} has no rollout running")
    return record


def _figures(split: RolloutSplit) -> tuple[Figures, Figures]:
    """The canary's figures, and the baseline's to judge them against (in a step where
    the baseline gets no traffic, its window of the step before)."""
    baseline = split.baseline_window
    if split.share >= 1 and split.previous_baseline is not None:
        baseline = split.previous_baseline
    return Figures.of(split.canary_window), Figures.of(baseline)


def _figures_dict(figures: Figures) -> dict[str, Any]:
    return {
        "queries": figures.queries,
        "error_rate": figures.error_rate,
        "default_rate": figures.default_rate,
        "p50_s": figures.p50_s,
        "p99_s": figures.p99_s,
        "agreement": figures.agreement,
        "compared": figures.compared,
        "reward": figures.reward,
        "rewarded": figures.rewarded,
    }


def _detail(record: RolloutRecord, step: int, plan: RolloutPlan | None = None) -> dict[str, object]:
    detail: dict[str, object] = {
        "model": record.model,
        "version": record.version,
        "baseline": record.baseline,
        "step": step + 1,
    }
    if plan is not None:
        detail["share"] = plan.steps[step].share
    return detail
