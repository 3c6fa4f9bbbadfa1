"""Unit tests for clipper.control.autoscaler: the decision, driven by observation series."""

from __future__ import annotations

import pytest

from clipper.control.autoscaler import (
    Decision,
    Observation,
    ScalingHistory,
    cluster_limit,
    decide,
    machine_limit,
    replica_cpus,
    wake,
)
from clipper.control.autoscaling_config import AutoscalingConfig
from clipper.core.exceptions import InvalidRequest
from clipper.core.resources import ResourceRequest
from clipper.placement.scheduling import FreeCapacity

CONFIG = AutoscalingConfig(
    min_replicas=1, max_replicas=8, upscale_window_s=5.0, downscale_delay_s=30.0
)


class Version:
    """One version's history fed at 1 s intervals, and `decide` asked after each."""

    def __init__(self, config: AutoscalingConfig = CONFIG, current: int = 1) -> None:
        self.config = config
        self.current = current
        self.now = 0.0
        self.history = ScalingHistory(config.downscale_delay_s + 1)
        self.decisions: list[Decision] = []

    def run(self, seconds: int, ratio: float, utilization: float, apply: bool = True) -> Decision:
        decision = Decision(self.current, self.current)
        for _ in range(seconds):
            self.now += 1.0
            self.history.add(Observation(self.now, 1.0, ratio, utilization, 100))
            decision = decide(self.config, self.history, self.now, self.current,
                              self.current, "m:1")  # fmt: skip
            if decision.changes:
                self.decisions.append(decision)
                if apply:
                    self.current = decision.desired
                    self.history.reset(self.now)
        return decision


def test_scales_up_once_the_upscale_window_is_full() -> None:
    version = Version()
    version.run(4, ratio=0.41, utilization=1.0)
    assert version.decisions == []
    version.run(1, ratio=0.41, utilization=1.0)
    [decision] = version.decisions
    assert (decision.current, decision.desired) == (1, 2)  # 0.41 / 0.2 > 2 but at most x2
    assert decision.reason == "scaled m:1 from 1 to 2: queue delay 41% of SLO over 5 s"


def test_scales_up_in_proportion_to_the_delay_within_the_factor() -> None:
    version = Version(current=4)
    decision = version.run(5, ratio=0.3, utilization=1.0)
    assert (decision.current, decision.desired) == (4, 6)  # ceil(4 * 0.3 / 0.2)


def test_up_stops_at_max_replicas() -> None:
    version = Version(AutoscalingConfig(min_replicas=1, max_replicas=3), current=1)
    version.run(60, ratio=0.9, utilization=1.0)
    assert version.current == 3
    assert [d.desired for d in version.decisions] == [2, 3]


def test_scales_down_one_step_per_delay() -> None:
    version = Version(current=4)
    version.run(29, ratio=0.0, utilization=0.05)
    assert version.decisions == []
    version.run(1, ratio=0.0, utilization=0.05)
    assert version.current == 3
    assert version.decisions[0].reason.startswith("scaled m:1 from 4 to 3: idle for 30 s")
    version.run(29, ratio=0.0, utilization=0.05)
    assert version.current == 3  # the next step waits a whole delay again
    version.run(31 * 3, ratio=0.0, utilization=0.05)
    assert version.current == 1  # and never below min_replicas


def test_no_downscale_while_queries_wait() -> None:
    version = Version(current=3)
    for _ in range(10):
        version.run(5, ratio=0.0, utilization=0.1)
        version.run(1, ratio=0.1, utilization=0.1)  # one busy second in each six
    assert version.decisions == []


def test_steady_load_does_not_flap() -> None:
    """A load that needs 1.5 replicas: two replicas are 75% busy with a little queueing;
    one fewer would be overloaded, so the count holds however long it lasts."""
    version = Version(current=2)
    version.run(600, ratio=0.1, utilization=0.75)
    version.run(600, ratio=0.02, utilization=0.75)
    assert version.decisions == []
    assert version.current == 2


def test_step_up_then_calm_settles_without_oscillating() -> None:
    version = Version(current=1)
    version.run(5, ratio=0.5, utilization=1.0)
    assert version.current == 2
    version.run(300, ratio=0.1, utilization=0.5)  # two replicas serve it comfortably
    assert version.current == 2
    assert len(version.decisions) == 1


def test_bounds_apply_at_once() -> None:
    history = ScalingHistory(10)
    config = AutoscalingConfig(min_replicas=2, max_replicas=4)
    below = decide(config, history, 0.0, 1, 1, "m:1")
    above = decide(config, history, 0.0, 6, 6, "m:1")
    assert (below.desired, above.desired) == (2, 4)
    assert "below min_replicas" in below.reason
    assert "above max_replicas 4" in above.reason


def test_waits_for_starting_replicas() -> None:
    version = Version(current=2)
    version.run(10, ratio=0.9, utilization=1.0, apply=False)
    decision = decide(CONFIG, version.history, version.now, 2, 1, "m:1")
    assert not decision.changes


def test_a_step_up_is_capped_by_the_machine() -> None:
    version = Version(current=2)
    version.run(4, ratio=0.9, utilization=1.0)
    machine = machine_limit(2, 0.5, others=0.5)  # 1.5 CPUs free: 3 replicas of 0.5
    assert machine is not None
    assert machine.replicas == 3
    decision = decide(CONFIG, version.history, version.now + 1, 2, 2, "m:1", machine)
    assert (decision.desired, decision.capped) == (3, True)
    assert decision.reason.startswith("scaled m:1 from 2 to 3: queue delay")
    assert "capped by the machine: 3 replicas of 0.5 CPU fit" in decision.reason


def test_a_full_machine_holds_and_says_so() -> None:
    version = Version(current=2)
    version.run(4, ratio=0.9, utilization=1.0)
    machine = machine_limit(2, 1.0, others=0.0)
    decision = decide(CONFIG, version.history, version.now + 1, 2, 2, "m:1", machine)
    assert not decision.changes
    assert decision.capped
    assert decision.reason.startswith("m:1 stays at 2: queue delay")


def test_the_machine_never_removes_running_replicas() -> None:
    machine = machine_limit(2, 1.0, others=2.0)  # nothing free
    config = AutoscalingConfig(min_replicas=3, max_replicas=4)
    decision = decide(config, ScalingHistory(10), 0.0, 2, 2, "m:1", machine)
    assert decision.desired == 2
    assert decision.capped


def test_a_step_up_is_capped_by_the_ray_clusters_free_resources() -> None:
    version = Version(current=2)
    version.run(4, ratio=0.9, utilization=1.0)
    cluster = cluster_limit(2, FreeCapacity(1, "1 more of slot 1 fit in what is free (...)"))
    assert cluster is not None
    decision = decide(CONFIG, version.history, version.now + 1, 2, 2, "m:1", cluster)
    assert (decision.desired, decision.capped) == (3, True)
    assert decision.reason.endswith(
        "; capped by the Ray cluster: 2 running, 1 more of slot 1 fit in what is free (...)"
    )
    assert cluster_limit(2, None) is None


def test_unschedulable_replicas_come_off_the_target() -> None:
    version = Version(current=4)
    reason = "waiting for free resources: it asks for slot 1 per replica"
    decision = decide(CONFIG, version.history, 0.0, 4, 2, "m:1", unschedulable=reason)
    assert (decision.desired, decision.capped) == (2, True)
    assert decision.reason == f"scaled m:1 from 4 to 2: 2 replica(s) unschedulable: {reason}"
    at_min = AutoscalingConfig(min_replicas=3, max_replicas=8)
    assert decide(at_min, version.history, 0.0, 4, 2, "m:1", unschedulable=reason).desired == 3
    assert not decide(at_min, version.history, 0.0, 3, 2, "m:1", unschedulable=reason).changes


def test_a_cold_start_that_cannot_be_placed_still_goes_back_to_zero() -> None:
    config = AutoscalingConfig(min_replicas=0, max_replicas=2, scale_to_zero_after_s=5.0)
    history = ScalingHistory(10)
    history.add(Observation(1.0, 1.0, 0.0, 0.0, 0))
    assert not decide(config, history, 3.0, 1, 0, "m:1", unschedulable="no node").changes
    assert decide(config, history, 3.0, 1, 0, "m:1").desired == 1  # placeable: it waits
    decision = decide(config, history, 6.0, 1, 0, "m:1", unschedulable="no node")
    assert decision.desired == 0
    assert not decide(config, history, 6.0, 1, 0, "m:1").changes


def test_replica_cpus() -> None:
    assert replica_cpus(ResourceRequest()) == 1.0
    assert replica_cpus(ResourceRequest.parse({"num_cpus": 0.25})) == 0.25
    assert replica_cpus(ResourceRequest.parse({"cpu_share": 0.5})) == 0.5
    assert machine_limit(4, 0.0, others=0.0) is None


def test_config_parse_round_trips_and_checks() -> None:
    config = AutoscalingConfig.parse({"min_replicas": 2, "max_replicas": 5, "upscale_window_s": 2})
    assert AutoscalingConfig.parse(config.to_dict()) == config
    assert config.upscale_window_s == 2.0
    for bad in ({"min_replicas": 1}, {"max_replicas": 2, "min_replicas": 3},
                {"max_replicas": 2, "speed": 1}, {"max_replicas": "2"},
                {"max_replicas": 2, "target_queue_delay_ratio": 0.01},
                {"max_replicas": 2, "upscaling_factor": 1}, []):  # fmt: skip
        with pytest.raises(InvalidRequest):
            AutoscalingConfig.parse(bad)


# -- scale to zero ----------------------------------------------------------------------

TO_ZERO = AutoscalingConfig(
    min_replicas=0, max_replicas=4, downscale_delay_s=30.0, scale_to_zero_after_s=60.0
)


def observe(version: Version, seconds: int, queries: int) -> None:
    """`seconds` 1 s intervals of `queries` each (no queue delay, idle replicas)."""
    for _ in range(seconds):
        version.now += 1.0
        version.history.add(Observation(version.now, 1.0, 0.0, 0.01, queries))
        decision = decide(version.config, version.history, version.now, version.current,
                          version.current, "m:1")  # fmt: skip
        if decision.changes:
            version.decisions.append(decision)
            version.current = decision.desired
            version.history.reset(version.now)


def test_an_idle_version_scales_to_zero_only_after_scale_to_zero_after_s() -> None:
    version = Version(TO_ZERO, current=1)
    observe(version, 59, queries=0)
    assert version.current == 1  # the usual downscale never takes the last replica
    observe(version, 1, queries=0)
    [decision] = version.decisions
    assert (decision.current, decision.desired) == (1, 0)
    assert decision.reason == (
        "scaled m:1 from 1 to 0: idle for 60 s (no query; the next one starts a replica)"
    )


def test_a_query_restarts_the_idle_time_and_steps_do_not() -> None:
    version = Version(TO_ZERO, current=3)
    observe(version, 50, queries=0)
    assert version.current == 2  # one step down after 30 s, as with min_replicas 1
    observe(version, 1, queries=1)
    observe(version, 59, queries=0)
    assert version.current == 1
    observe(version, 1, queries=0)
    assert version.current == 0
    assert version.decisions[-1].reason.startswith("scaled m:1 from 1 to 0: idle for 60 s")


def test_min_zero_with_traffic_keeps_a_replica() -> None:
    version = Version(TO_ZERO, current=1)
    observe(version, 600, queries=1)
    assert version.decisions == []
    assert version.current == 1


def test_min_one_never_scales_to_zero() -> None:
    config = AutoscalingConfig(min_replicas=1, max_replicas=4, scale_to_zero_after_s=1.0)
    version = Version(config, current=1)
    observe(version, 600, queries=0)
    assert version.current == 1


def test_a_wake_is_one_replica_with_its_reason() -> None:
    decision = wake("m:1")
    assert (decision.current, decision.desired) == (0, 1)
    assert decision.reason == "scaled m:1 from 0 to 1: a query arrived while it was cold"
    # At 0 the rules hold: only a wake brings the version back.
    assert not decide(TO_ZERO, ScalingHistory(10), 0.0, 0, 0, "m:1").changes


def test_config_allows_min_zero_but_not_max_zero() -> None:
    config = AutoscalingConfig.parse({"min_replicas": 0, "max_replicas": 2})
    assert config.scales_to_zero
    assert config.scale_to_zero_after_s == 300.0
    for bad in ({"min_replicas": 0, "max_replicas": 0}, {"min_replicas": -1, "max_replicas": 2},
                {"max_replicas": 2, "scale_to_zero_after_s": 0}):  # fmt: skip
        with pytest.raises(InvalidRequest):
            AutoscalingConfig.parse(bad)
