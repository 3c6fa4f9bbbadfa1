"""A canary rollout's plan: its steps and the checks that judge each one. Pure values.

A plan is given as JSON (every field optional; README.md#canary-rollouts):

    {"shadow_s": 60,                      # a shadow step first (0: none)
     "steps": [0.05, 0.25, 0.5, 1.0],     # shares, or {"share": 0.05, "duration_s": 30}
     "step_s": 60,                        # the duration of a step given as a share
     "checks": {"max_p99_ratio": 1.2,     # over the defaults; null turns one off
                "max_error_rate": {"threshold": 0.01, "min_queries": 200},
                "max_reward_drop": {"threshold": 0.1, "min_queries": 30}},  # feedback
     "min_queries": 50,                   # before a check may judge (default of each)
     "latency_slack_s": 0.005,            # added to a latency ratio's limit
     "on_restart": "resume"}              # or "abort", after a server restart

`RolloutPlan.to_dict()` gives the canonical form (every step and check spelled out),
which `parse` reads back to the same plan; the registry stores that form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clipper.core.exceptions import InvalidRequest

__all__ = [
    "CHECKS",
    "DEFAULT_CHECKS",
    "Check",
    "CheckKind",
    "RolloutPlan",
    "Step",
]

DEFAULT_SHADOW_S = 60.0
DEFAULT_STEP_S = 60.0
DEFAULT_SHARES = (0.05, 0.25, 0.5, 1.0)
DEFAULT_MIN_QUERIES = 50
DEFAULT_LATENCY_SLACK_S = 0.005
ON_RESTART = ("resume", "abort")
WARMUP_SHARE = 0.2
MAX_WARMUP_S = 5.0


@dataclass(frozen=True, slots=True)
class CheckKind:
    """What a check compares: a figure of the new version (`metric`) against an absolute
    bound, or against the current version's figure (`relative`): times the threshold, or,
    for a `drop` check, less the threshold."""

    metric: str  # error_rate, default_rate, p50_s, p99_s, agreement, reward
    upper: bool  # the figure must stay at or below the limit (else at or above)
    relative: bool
    shadow_only: bool = False
    min_samples: int = 0  # a 99th percentile of fewer than 100 latencies is their maximum
    drop: bool = False
    traffic_only: bool = False  # reward: in a shadow step no client sees the new answers


CHECKS: dict[str, CheckKind] = {
    "max_error_rate": CheckKind("error_rate", True, False),
    "max_default_rate": CheckKind("default_rate", True, False),
    "max_p50_s": CheckKind("p50_s", True, False),
    "max_p99_s": CheckKind("p99_s", True, False, min_samples=100),
    "max_p50_ratio": CheckKind("p50_s", True, True),
    "max_p99_ratio": CheckKind("p99_s", True, True, min_samples=100),
    "min_agreement": CheckKind("agreement", False, False, shadow_only=True),
    "min_reward_ratio": CheckKind("reward", False, True, traffic_only=True),
    "max_reward_drop": CheckKind("reward", False, True, drop=True, traffic_only=True),
}
"""Every check a plan may name. The reward checks (off unless a plan names them: an app
without feedback would never reach their minimum) compare the mean feedback reward of each
version's answers; their `min_queries` counts feedback, not queries."""

DEFAULT_CHECKS: dict[str, float] = {
    "max_error_rate": 0.01,
    "max_default_rate": 0.05,
    "max_p50_ratio": 1.5,
    "max_p99_ratio": 1.5,
    "min_agreement": 0.95,
}


@dataclass(frozen=True, slots=True)
class Step:
    """One step: a shadow step (the new version gets a copy of the traffic), or a traffic
    step sending `share` (0 < share <= 1) of the model's queries to the new version."""

    duration_s: float
    share: float = 0.0
    shadow: bool = False

    @property
    def warmup_s(self) -> float:
        """The start of the step whose traffic is not judged: `WARMUP_SHARE` of it, at most
        `MAX_WARMUP_S` (a fresh replica's first batches, and a batch sizer adapting to a
        new share, are slower than what follows)."""
        return min(self.duration_s * WARMUP_SHARE, MAX_WARMUP_S)

    def describe(self) -> str:
        """`shadow`, or the share as a percentage."""
        return "shadow" if self.shadow else f"{self.share * 100:g}%"


@dataclass(frozen=True, slots=True)
class Check:
    """A named check with its threshold and the queries it needs before it judges."""

    name: str
    threshold: float
    min_queries: int

    @property
    def kind(self) -> CheckKind:
        """What it compares (`CHECKS`)."""
        return CHECKS[self.name]

    @property
    def needs(self) -> int:
        """The observations it needs before it judges (a p99 check, at least 100)."""
        return max(self.min_queries, self.kind.min_samples)

    def applies_to(self, step: Step) -> bool:
        """Whether it judges `step` (agreement is measured in a shadow step only, reward
        in traffic steps only)."""
        if step.shadow:
            return not self.kind.traffic_only
        return not self.kind.shadow_only


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    """The steps of a rollout, in order, and the checks that judge each one."""

    steps: tuple[Step, ...]
    checks: tuple[Check, ...]
    latency_slack_s: float = DEFAULT_LATENCY_SLACK_S
    on_restart: str = "resume"

    @classmethod
    def parse(cls, value: Mapping[str, Any] | None) -> RolloutPlan:
        """A plan from its JSON form (None: the defaults); InvalidRequest names what is
        wrong."""
        given = dict(value or {})
        unknown = sorted(set(given) - _FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown rollout plan field(s): {', '.join(unknown)} "
                                 f"(known: {', '.join(sorted(_FIELDS))})")  # fmt: skip
        min_queries = _integer(given.get("min_queries", DEFAULT_MIN_QUERIES), "min_queries")
        slack = _seconds(given.get("latency_slack_s", DEFAULT_LATENCY_SLACK_S), "latency_slack_s")
        on_restart = given.get("on_restart", "resume")
        if on_restart not in ON_RESTART:
            raise InvalidRequest(f"on_restart must be one of {', '.join(ON_RESTART)}")
        steps = _steps(given)
        checks = _checks(given.get("checks") or {}, min_queries)
        return cls(steps, checks, slack, on_restart)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (`parse` reads it back to an equal plan)."""
        shadow = [step.duration_s for step in self.steps if step.shadow]
        traffic = [step for step in self.steps if not step.shadow]
        chosen = {check.name: check for check in self.checks}
        return {
            "shadow_s": shadow[0] if shadow else 0,
            "steps": [{"share": step.share, "duration_s": step.duration_s} for step in traffic],
            "checks": {
                name: (
                    {"threshold": chosen[name].threshold, "min_queries": chosen[name].min_queries}
                    if name in chosen
                    else None
                )
                for name in CHECKS
            },
            "latency_slack_s": self.latency_slack_s,
            "on_restart": self.on_restart,
        }


_FIELDS = frozenset(
    {"shadow_s", "steps", "step_s", "checks", "min_queries", "latency_slack_s", "on_restart"}
)


def _steps(given: Mapping[str, Any]) -> tuple[Step, ...]:
    step_s = _seconds(given.get("step_s", DEFAULT_STEP_S), "step_s")
    shadow_s = _seconds(given.get("shadow_s", DEFAULT_SHADOW_S), "shadow_s", zero=True)
    steps = [Step(shadow_s, shadow=True)] if shadow_s > 0 else []
    listed = given.get("steps", DEFAULT_SHARES)
    if not isinstance(listed, (list, tuple)) or not listed:
        raise InvalidRequest("steps must be a non-empty list of shares or {share, duration_s}")
    for item in listed:
        share, duration_s = item, step_s
        if isinstance(item, Mapping):
            share = item.get("share")
            duration_s = _seconds(item.get("duration_s", step_s), "a step's duration_s")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise InvalidRequest(f"a step's share must be a number in (0, 1], got {share!r}")
        steps.append(Step(duration_s, float(share)))
    shares = [step.share for step in steps if not step.shadow]
    if shares != sorted(shares) or shares[-1] != 1:
        raise InvalidRequest("step shares must not decrease and the last must be 1 (100%)")
    return tuple(steps)


def _checks(given: Any, min_queries: int) -> tuple[Check, ...]:
    if not isinstance(given, Mapping):
        raise InvalidRequest("checks must be an object: {check name: threshold}")
    unknown = sorted(set(given) - set(CHECKS))
    if unknown:
        raise InvalidRequest(f"unknown rollout check(s): {', '.join(unknown)} "
                             f"(known: {', '.join(CHECKS)})")  # fmt: skip
    merged: dict[str, Any] = {**DEFAULT_CHECKS, **given}
    checks = []
    for name, setting in merged.items():
        if setting is None:
            continue
        threshold, needed = setting, min_queries
        if isinstance(setting, Mapping):
            threshold = setting.get("threshold")
            needed = _integer(setting.get("min_queries", min_queries), f"{name}.min_queries")
        checks.append(Check(name, _threshold(threshold, name), needed))
    return tuple(sorted(checks, key=lambda check: list(CHECKS).index(check.name)))


def _threshold(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidRequest(f"check {name}: the threshold must be a number >= 0, got {value!r}")
    if not math.isfinite(value):
        raise InvalidRequest(f"check {name}: the threshold must be finite")
    return float(value)


def _seconds(value: Any, name: str, *, zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero):
        raise InvalidRequest(f"{name} must be a number of seconds {'>=' if zero else '>'} 0")
    return float(value)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(f"{name} must be an integer >= 1, got {value!r}")
    return value
