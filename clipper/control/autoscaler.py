"""The autoscaler's decision: pure logic over observations, no I/O, no clock of its own.

Each interval the loop (clipper.control.autoscaling_loop) hands a version's `Observation`
to its `ScalingHistory` and asks `decide` for the replica count it should have, with the
reason in words. The rules, in order:

1. Bounds: a target below `min_replicas` or above `max_replicas` moves to the bound at once.
2. While a step's replicas are still starting (ready < target) nothing else is decided,
   unless the placement says they cannot be placed (`unschedulable`, on Ray): then the
   target comes back to the replicas that run (at least `min_replicas` and one), with the
   placement's reason; and a version whose only replica cannot be placed still goes to
   zero by rule 3.
3. To zero: with `min_replicas` 0, when no query reached the version for
   `scale_to_zero_after_s` (`ScalingHistory.last_query_s`): to 0, every replica at once.
   The way back is `wake`: the first query for a version at 0 starts one replica.
4. Up, fast: when the queries' mean queue delay over the last `upscale_window_s` is above
   `target_queue_delay_ratio` of the SLO, to ceil(n * ratio / target), at least n + 1 and
   at most ceil(n * upscaling_factor).
5. Down, slowly: when every observation of the last `downscale_delay_s` had a queue delay
   below `downscale_queue_delay_ratio` of the SLO and the mean in-flight load would keep
   n - 1 replicas at most `target_utilization` busy: one replica fewer (never below 1:
   only rule 3 takes the last one).
6. Otherwise hold (the band between the up and down conditions is the hysteresis).

A step clears the history (`ScalingHistory.reset`): the next step reads only what the new
count did, so a step up is followed by the next only after a full `upscale_window_s` and a
step down by the next only after a full `downscale_delay_s`.

Bounded by the machine: `machine_limit` is how many replicas of a version fit beside the
others on this machine's CPUs (`cluster_limit`: on a Ray cluster's free resources, beside
those that run); a step up is cut to it and says so, and the limit never removes replicas
that run already.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from clipper.control.autoscaling_config import AutoscalingConfig
from clipper.core.resources import ResourceRequest
from clipper.placement.scheduling import FreeCapacity

__all__ = [
    "Decision",
    "MachineLimit",
    "Observation",
    "ScalingHistory",
    "cluster_limit",
    "decide",
    "machine_limit",
    "mean_queue_delay_ratio",
    "replica_cpus",
    "wake",
]

_EPSILON_S = 1e-6


@dataclass(frozen=True, slots=True)
class Observation:
    """What one version did over one interval ending at `at_s` (monotonic seconds).

    `queue_delay_ratio` is the mean time its queries waited in the batch queue (a query
    that expired there counts its whole SLO) over the SLO, 0 when none was dispatched;
    `utilization` the time-averaged in-flight load per replica: the share of its replicas'
    batch slots (replicas x max_in_flight) that were busy; `queries` how many were dispatched.
    """

    at_s: float
    interval_s: float
    queue_delay_ratio: float
    utilization: float
    queries: int


@dataclass(frozen=True, slots=True)
class MachineLimit:
    """How many replicas of a version `bound` (this machine's CPUs, or a cluster's free
    resources) holds, and why, in words."""

    replicas: int
    detail: str
    bound: str = "the machine"


@dataclass(frozen=True, slots=True)
class Decision:
    """The count a version should have; `reason` in words ("" when it holds); `capped`
    when the machine cut it."""

    current: int
    desired: int
    reason: str = ""
    capped: bool = False

    @property
    def changes(self) -> bool:
        """Whether the target moves."""
        return self.desired != self.current


class ScalingHistory:
    """A version's observations since its last step, oldest first (at most `horizon_s`).

    Invariant: every observation ended after `since_s`, the time of the last step (or of
    the first observation's start), so `covers(length)` says whether the history holds a
    whole window of that length. `last_query_s`, which a step does not reset, is the end
    of the last interval in which a query reached the version (or `queried`), else the
    start of the first observation.
    """

    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self.since_s: float | None = None
        self.last_query_s: float | None = None
        self._observations: deque[Observation] = deque()

    def add(self, observation: Observation) -> None:
        """Append one interval's observation, forgetting those past the horizon."""
        if self.since_s is None:
            self.since_s = observation.at_s - observation.interval_s
        if observation.queries:
            self.last_query_s = observation.at_s
        elif self.last_query_s is None:
            self.last_query_s = observation.at_s - observation.interval_s
        self._observations.append(observation)
        oldest = observation.at_s - self.horizon_s
        while self._observations and self._observations[0].at_s <= oldest:
            self._observations.popleft()

    def reset(self, at_s: float) -> None:
        """A step was taken at `at_s`: start over."""
        self._observations.clear()
        self.since_s = at_s

    def queried(self, at_s: float) -> None:
        """A query reached the version at `at_s` outside the observations (it woke it)."""
        self.last_query_s = at_s

    def idle_for(self, now_s: float) -> float:
        """Seconds since the last query (0 before any observation)."""
        return 0.0 if self.last_query_s is None else now_s - self.last_query_s

    def covers(self, now_s: float, length_s: float) -> bool:
        """Whether the observations span the last `length_s` seconds."""
        return self.since_s is not None and now_s - self.since_s >= length_s - _EPSILON_S

    def window(self, now_s: float, length_s: float) -> list[Observation]:
        """The observations that ended in the last `length_s` seconds."""
        start = now_s - length_s + _EPSILON_S
        return [o for o in self._observations if o.at_s >= start]


def decide(
    config: AutoscalingConfig,
    history: ScalingHistory,
    now_s: float,
    current: int,
    ready: int,
    model: str,
    machine: MachineLimit | None = None,
    unschedulable: str | None = None,
) -> Decision:
    """The replica count `model` (`name:version`) should have now; see the module rules.
    `unschedulable`: why its replicas that are not ready cannot be placed, if they cannot."""
    bounded = _bounds(config, current, model, machine)
    if bounded is not None:
        return bounded
    if ready < current:
        if unschedulable is None:
            return Decision(current, current)
        back = _unplaceable(config, current, ready, model, unschedulable)
        idle = back or _to_zero(config, history, now_s, current, model)
        return idle or Decision(current, current)
    idle = _to_zero(config, history, now_s, current, model)
    if idle is not None:
        return idle
    up = _upscale(config, history, now_s, current, model, machine)
    if up is not None:
        return up
    down = _downscale(config, history, now_s, current, model)
    return down or Decision(current, current)


def _bounds(
    config: AutoscalingConfig, current: int, model: str, machine: MachineLimit | None
) -> Decision | None:
    if current > config.max_replicas:
        return Decision(current, config.max_replicas,
                        f"scaled {model} from {current} to {config.max_replicas}: above "
                        f"max_replicas {config.max_replicas}")  # fmt: skip
    if current >= config.min_replicas:
        return None
    reason = f"scaled {model} from {current} to {config.min_replicas}: below min_replicas"
    return _capped(Decision(current, config.min_replicas, reason), machine, model)


def _to_zero(
    config: AutoscalingConfig, history: ScalingHistory, now_s: float, current: int, model: str
) -> Decision | None:
    after_s = config.scale_to_zero_after_s
    if not config.scales_to_zero or current == 0:
        return None
    if history.idle_for(now_s) < after_s - _EPSILON_S:
        return None
    return Decision(current, 0, f"scaled {model} from {current} to 0: idle for {after_s:g} s "
                                "(no query; the next one starts a replica)")  # fmt: skip


def _unplaceable(
    config: AutoscalingConfig, current: int, ready: int, model: str, reason: str
) -> Decision | None:
    """Back to the replicas that run (at least `min_replicas` and one), as the placement
    cannot place the others."""
    back = max(ready, config.min_replicas, 1)
    if back >= current:
        return None
    waiting = current - ready
    head = f"scaled {model} from {current} to {back}"
    return Decision(current, back, f"{head}: {waiting} replica(s) unschedulable: {reason}", True)


def wake(model: str) -> Decision:
    """A query asked for `model`, at 0 replicas with `min_replicas` 0: one replica, at once
    (a cold start is never capped by the machine: the query would wait for nothing)."""
    return Decision(0, 1, f"scaled {model} from 0 to 1: a query arrived while it was cold")


def _upscale(
    config: AutoscalingConfig,
    history: ScalingHistory,
    now_s: float,
    current: int,
    model: str,
    machine: MachineLimit | None,
) -> Decision | None:
    length_s = config.upscale_window_s
    if not history.covers(now_s, length_s):
        return None
    ratio = mean_queue_delay_ratio(history.window(now_s, length_s))
    if ratio <= config.target_queue_delay_ratio or current >= config.max_replicas:
        return None
    wanted = math.ceil(current * ratio / config.target_queue_delay_ratio - _EPSILON_S)
    most = math.ceil(current * config.upscaling_factor - _EPSILON_S)
    desired = min(max(wanted, current + 1), most, config.max_replicas)
    reason = (f"scaled {model} from {current} to {desired}: queue delay "
              f"{ratio:.0%} of SLO over {length_s:g} s")  # fmt: skip
    return _capped(Decision(current, desired, reason), machine, model)


def _downscale(
    config: AutoscalingConfig, history: ScalingHistory, now_s: float, current: int, model: str
) -> Decision | None:
    length_s = config.downscale_delay_s
    if current <= max(1, config.min_replicas) or not history.covers(now_s, length_s):
        return None
    window = history.window(now_s, length_s)
    worst = max((o.queue_delay_ratio for o in window), default=0.0)
    busy = sum(o.utilization * o.interval_s for o in window) / length_s
    if worst >= config.downscale_queue_delay_ratio:
        return None
    if busy * current / (current - 1) > config.target_utilization:
        return None
    reason = (f"scaled {model} from {current} to {current - 1}: idle for {length_s:g} s "
              f"(queue delay at most {worst:.0%} of SLO, replicas {busy:.0%} busy)")  # fmt: skip
    return Decision(current, current - 1, reason)


def _capped(decision: Decision, machine: MachineLimit | None, model: str) -> Decision:
    """Cut a step up to what the machine holds (never below the current count)."""
    if machine is None or decision.desired <= machine.replicas:
        return decision
    desired = max(decision.current, machine.replicas)
    head = decision.reason.split(": ", 1)[1]
    if desired == decision.current:
        reason = f"{model} stays at {desired}: {head}"
    else:
        reason = decision.reason.replace(f"to {decision.desired}:", f"to {desired}:", 1)
    return Decision(decision.current, desired,
                    f"{reason}; capped by {machine.bound}: {machine.detail}", True)  # fmt: skip


def mean_queue_delay_ratio(observations: Iterable[Observation]) -> float:
    """The queue delay ratio of all their queries together (0 without any query)."""
    queries = weighted = 0.0
    for observation in observations:
        queries += observation.queries
        weighted += observation.queue_delay_ratio * observation.queries
    return weighted / queries if queries else 0.0


def replica_cpus(resources: ResourceRequest) -> float:
    """The CPUs one replica takes on this machine (`ResourceRequest.cpus`)."""
    return resources.cpus


def machine_limit(cpu_count: int, per_replica: float, others: float) -> MachineLimit | None:
    """How many replicas of `per_replica` CPUs fit in `cpu_count` CPUs beside `others`
    CPUs of other versions' replicas; None when a replica takes no CPU."""
    if per_replica <= 0:
        return None
    free = max(0.0, cpu_count - others)
    replicas = math.floor(free / per_replica + _EPSILON_S)
    return MachineLimit(
        replicas,
        f"{replicas} replicas of {per_replica:g} CPU fit in the {free:g} of {cpu_count} "
        "CPUs other replicas leave",
    )


def cluster_limit(running: int, free: FreeCapacity | None) -> MachineLimit | None:
    """How many replicas of a version a cluster holds: the `running` ones (their resources
    are theirs) and those its free resources hold; None when that is unknown."""
    if free is None:
        return None
    return MachineLimit(
        running + free.replicas, f"{running} running, {free.detail}", "the Ray cluster"
    )
