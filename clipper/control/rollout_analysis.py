"""Judging a rollout step: the new version's figures against the current version's, on
the same window of live traffic, check by check. Pure: no I/O, no clock.

A check judges once the window holds its minimum of queries (for a relative check, both
versions' windows; for agreement, inputs both answered; for reward, feedback given). A
failed check rolls the rollout back at once; the step advances when its time is up and
every check passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from clipper.control.rollout_plan import Check, RolloutPlan, Step
from clipper.dataplane.rollout_split import VersionWindow

__all__ = ["CheckResult", "CheckState", "Decision", "Figures", "Verdict", "decide", "judge"]


@dataclass(frozen=True, slots=True)
class Figures:
    """One version's figures over a window (None: nothing to compute them from)."""

    queries: int = 0
    error_rate: float | None = None
    default_rate: float | None = None
    p50_s: float | None = None
    p99_s: float | None = None
    agreement: float | None = None
    compared: int = 0
    reward: float | None = None
    rewarded: int = 0

    @classmethod
    def of(cls, window: VersionWindow | None) -> Figures:
        """The figures of a window (empty figures for None)."""
        if window is None:
            return cls()
        queries = window.queries
        return cls(
            queries,
            window.errors / queries if queries else None,
            window.defaults / queries if queries else None,
            window.quantile(0.5),
            window.quantile(0.99),
            window.agreed / window.compared if window.compared else None,
            window.compared,
            window.mean_reward,
            window.rewarded,
        )

    def metric(self, name: str) -> float | None:
        """The figure `name` (a `CheckKind.metric`)."""
        value: float | None = getattr(self, name)
        return value

    def count_for(self, metric: str) -> int:
        """How many observations the figure `metric` stands on."""
        if metric == "agreement":
            return self.compared
        return self.rewarded if metric == "reward" else self.queries


class CheckState(Enum):
    """Where a check stands in a step."""

    PASSED = "passed"
    FAILED = "failed"
    WAITING = "waiting"  # fewer queries than its minimum so far


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check in a step: both figures, the limit they were held to, and the outcome."""

    check: Check
    state: CheckState
    new: float | None
    current: float | None
    limit: float | None
    queries_needed: int = 0

    def reason(self) -> str:
        """Why it failed (or stands), with both figures and the threshold."""
        kind = self.check.kind
        relation = "over" if kind.upper else "under"
        threshold = f"{self.check.threshold:g}"
        if kind.relative:
            threshold += " below the current version's" if kind.drop else (
                " x the current version's")  # fmt: skip
        return (
            f"{self.check.name}: new version {kind.metric} {_show(self.new)} vs current "
            f"{_show(self.current)}, {relation} the limit {_show(self.limit)} "
            f"(threshold {threshold})"
        )

    def to_dict(self) -> dict[str, object]:
        """The JSON form of `rollout status`."""
        return {
            "name": self.check.name,
            "threshold": self.check.threshold,
            "min_queries": self.check.min_queries,
            "state": self.state.value,
            "new": self.new,
            "current": self.current,
            "limit": self.limit,
            "queries_needed": self.queries_needed,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """Every applicable check of a step."""

    results: tuple[CheckResult, ...]

    @property
    def failed(self) -> CheckResult | None:
        """The first failed check, or None."""
        return next((r for r in self.results if r.state is CheckState.FAILED), None)

    @property
    def passed(self) -> bool:
        """Every check judged, and passed."""
        return all(result.state is CheckState.PASSED for result in self.results)


class Decision(Enum):
    """What a rollout does next."""

    ROLL_BACK = "roll_back"
    ADVANCE = "advance"
    WAIT = "wait"


def judge(plan: RolloutPlan, step: Step, new: Figures, current: Figures) -> Verdict:
    """Each check of `plan` that applies to `step`, judged on the two versions' figures."""
    return Verdict(
        tuple(
            _judge_one(check, new, current, plan.latency_slack_s)
            for check in plan.checks
            if check.applies_to(step)
        )
    )


def decide(verdict: Verdict, elapsed_s: float, step: Step) -> Decision:
    """Roll back on a failed check; advance once the step's time is up and every check
    passed; else wait (a check still short of its minimum keeps the step going)."""
    if verdict.failed is not None:
        return Decision.ROLL_BACK
    if elapsed_s >= step.duration_s and verdict.passed:
        return Decision.ADVANCE
    return Decision.WAIT


def _judge_one(check: Check, new: Figures, current: Figures, slack_s: float) -> CheckResult:
    kind = check.kind
    ours, theirs = new.metric(kind.metric), current.metric(kind.metric)
    needed = max(0, check.needs - new.count_for(kind.metric))
    if kind.relative:
        needed = max(needed, check.needs - current.count_for(kind.metric))
    limit: float | None = check.threshold
    if kind.relative:
        limit = None if theirs is None else _relative_limit(check, theirs, slack_s)
    if needed or ours is None or limit is None:
        return CheckResult(check, CheckState.WAITING, ours, theirs, limit, max(needed, 1))
    within = ours <= limit if kind.upper else ours >= limit
    state = CheckState.PASSED if within else CheckState.FAILED
    return CheckResult(check, state, ours, theirs, limit)


def _relative_limit(check: Check, theirs: float, slack_s: float) -> float:
    """The current version's figure moved by the threshold: less it (a drop), or times
    it, plus the latency slack for a latency."""
    kind = check.kind
    if kind.drop:
        return theirs - check.threshold
    return theirs * check.threshold + (slack_s if kind.metric.endswith("_s") else 0.0)


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
