"""The metrics of running canary rollouts, read at scrape time from what the control
layer reports (`RolloutSample`): nothing is updated on the query path."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

__all__ = ["CheckSample", "RolloutCollector", "RolloutSample"]


@dataclass(frozen=True, slots=True)
class CheckSample:
    """One check of a rollout's step: both versions' figures and the limit (None: not
    computed yet, so not exported)."""

    name: str
    new: float | None
    current: float | None
    limit: float | None
    passed: bool | None  # None: still waiting for its minimum of queries


@dataclass(frozen=True, slots=True)
class RolloutSample:
    """A running rollout of `model:version`: its step (1-based), the new version's share
    (0 in a shadow step), whether it is paused, each version's queries and feedback
    rewards in the step's window, and its checks."""

    model: str
    version: str
    step: int
    share: float
    paused: bool
    queries_new: int = 0
    queries_current: int = 0
    checks: tuple[CheckSample, ...] = ()
    feedback_new: int = 0
    feedback_current: int = 0


_FAMILIES: dict[str, tuple[str, list[str]]] = {
    "step": ("The step a running rollout is at (1-based).", []),
    "share": ("The new version's traffic share in the rollout's step (0: shadow).", []),
    "paused": ("1 while an operator holds the rollout (pause_rollout).", []),
    "window_queries": (
        "Queries each version (side: new, current) answered in the step's window.",
        ["side"],
    ),
    "window_feedback": (
        "Feedback rewards given to each version's answers (side: new, current) in the "
        "step's window.",
        ["side"],
    ),
    "check_value": (
        "A rollout check's figure for each version (side: new, current) on the step's window.",
        ["check", "side"],
    ),
    "check_limit": ("The limit a rollout check holds the new version's figure to.", ["check"]),
    "check_passed": (
        "1: the check passes, 0: it fails; absent while it waits for queries.",
        ["check"],
    ),
}


class RolloutCollector:
    """`clipper_rollout_<name>{model, version, ...}` for each running rollout."""

    def __init__(self, samples: Callable[[], Iterable[RolloutSample]]) -> None:
        self._samples = samples

    def describe(self) -> list[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        for sample in self._samples():
            key = [sample.model, sample.version]
            families["step"].add_metric(key, sample.step)
            families["share"].add_metric(key, sample.share)
            families["paused"].add_metric(key, float(sample.paused))
            families["window_queries"].add_metric([*key, "new"], sample.queries_new)
            families["window_queries"].add_metric([*key, "current"], sample.queries_current)
            families["window_feedback"].add_metric([*key, "new"], sample.feedback_new)
            families["window_feedback"].add_metric([*key, "current"], sample.feedback_current)
            for check in sample.checks:
                for side, value in (("new", check.new), ("current", check.current)):
                    if value is not None:
                        families["check_value"].add_metric([*key, check.name, side], value)
                if check.limit is not None:
                    families["check_limit"].add_metric([*key, check.name], check.limit)
                if check.passed is not None:
                    families["check_passed"].add_metric([*key, check.name], float(check.passed))
        yield from families.values()

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        return {
            name: GaugeMetricFamily(
                f"clipper_rollout_{name}", text, labels=["model", "version", *labels]
            )
            for name, (text, labels) in _FAMILIES.items()
        }
