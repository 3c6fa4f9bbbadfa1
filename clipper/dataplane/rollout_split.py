"""A model under a canary rollout, as the data plane sees it: how its traffic is split
between the current version (the baseline) and the new one (the canary), and what each
version did with it since the step began (`VersionWindow`).

Pure values and counters: no I/O, no clock. The control plane (clipper.control.rollouts)
creates a split, moves it from step to step (share, shadow, fresh windows) and judges the
windows; the data plane's rollout path (`rollout_path.py`) fills them.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["MAX_LATENCY_SAMPLES", "Outcome", "RolloutSplit", "VersionWindow"]

MAX_LATENCY_SAMPLES = 20_000
"""Latencies a window keeps; past that it keeps a uniform sample of them (reservoir)."""


class Outcome(Enum):
    """What became of one input asked of a version."""

    ANSWERED = "answered"
    ERROR = "error"  # the model raised, or its replica crashed
    MISSED = "missed"  # no answer by the deadline (or no replica to ask)
    REFUSED = "refused"  # admission control turned it away

    @property
    def failed(self) -> bool:
        """No model answer: the input's answer would be the default."""
        return self is not Outcome.ANSWERED


@dataclass(slots=True)
class VersionWindow:
    """One version's figures over a window of live traffic.

    Invariants: `errors <= defaults <= queries` (every error is also an input without a
    model answer); `agreed <= compared`; `latencies_s` is sorted, and holds every latency
    observed while there were at most `MAX_LATENCY_SAMPLES`, a uniform sample after;
    `reward_sum` is the sum of the `rewarded` feedback rewards given to this version's
    answers (feedback arrives later than its query: it counts in the window it lands in).
    """

    queries: int = 0
    errors: int = 0
    defaults: int = 0
    compared: int = 0
    agreed: int = 0
    rewarded: int = 0
    reward_sum: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    _timed: int = 0
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    def observe(self, outcome: Outcome, latency_s: float | None) -> None:
        """Count one input; `latency_s` for an answered or missed one (None: not timed)."""
        self.queries += 1
        if outcome is not Outcome.ANSWERED:
            self.defaults += 1
        if outcome is Outcome.ERROR:
            self.errors += 1
        if latency_s is not None:
            self._sample(latency_s)

    def compare(self, agreed: bool) -> None:
        """Count one input both versions answered, and whether their answers agreed."""
        self.compared += 1
        self.agreed += agreed

    def reward(self, reward: float) -> None:
        """Count one feedback reward given to an answer of this version."""
        self.rewarded += 1
        self.reward_sum += reward

    @property
    def mean_reward(self) -> float | None:
        """The mean feedback reward; None without any."""
        return self.reward_sum / self.rewarded if self.rewarded else None

    def quantile(self, q: float) -> float | None:
        """The `q` quantile (0..1) of the latencies, nearest rank; None without any."""
        if not self.latencies_s:
            return None
        rank = min(len(self.latencies_s) - 1, max(0, int(q * len(self.latencies_s) + 0.5) - 1))
        return self.latencies_s[rank]

    def to_dict(self) -> dict[str, Any]:
        """The window as JSON (for the control process, which merges the frontends')."""
        return {
            "queries": self.queries, "errors": self.errors, "defaults": self.defaults,
            "compared": self.compared, "agreed": self.agreed, "rewarded": self.rewarded,
            "reward_sum": self.reward_sum, "latencies_s": self.latencies_s, "timed": self._timed,
        }  # fmt: skip

    @classmethod
    def merged(cls, windows: Iterable[dict[str, Any]]) -> VersionWindow:
        """One window of several `to_dict` forms (several frontends' windows of a version):
        counts summed, latencies pooled; past `MAX_LATENCY_SAMPLES`, each window gives a
        share of them in proportion to the latencies it observed (so the pool stays a
        uniform sample of all of them, and its quantiles are the whole traffic's)."""
        parts = list(windows)
        out = cls()
        for part in parts:
            out.queries += int(part["queries"])
            out.errors += int(part["errors"])
            out.defaults += int(part["defaults"])
            out.compared += int(part["compared"])
            out.agreed += int(part["agreed"])
            out.rewarded += int(part["rewarded"])
            out.reward_sum += float(part["reward_sum"])
            out._timed += int(part["timed"])
        room = min(1.0, MAX_LATENCY_SAMPLES / out._timed) if out._timed else 1.0
        pooled: list[float] = []
        for part in parts:
            kept: list[float] = list(part["latencies_s"])
            share = min(len(kept), round(int(part["timed"]) * room))
            pooled.extend(kept if share >= len(kept) else out._rng.sample(kept, share))
        out.latencies_s = sorted(pooled)
        return out

    def _sample(self, latency_s: float) -> None:
        self._timed += 1
        if len(self.latencies_s) < MAX_LATENCY_SAMPLES:
            bisect.insort(self.latencies_s, latency_s)
            return
        slot = self._rng.randrange(self._timed)
        if slot < MAX_LATENCY_SAMPLES:  # replace a random kept sample: a uniform reservoir
            del self.latencies_s[self._rng.randrange(MAX_LATENCY_SAMPLES)]
            bisect.insort(self.latencies_s, latency_s)


@dataclass(slots=True)
class RolloutSplit:
    """How the queries of the apps linked to `model` are split during its rollout.

    In a shadow step every query goes to `baseline` and a copy to `canary`, whose answers
    are compared and never returned. In a traffic step a query goes to the canary with
    probability `share`, else to the baseline; an input the canary fails is asked of the
    baseline again while its deadline allows (`retried` counts them). The windows hold
    what each version did since the step began; `previous_baseline` is the baseline's
    window of the step before (what a step with share 1 compares against).
    """

    model: str
    baseline: str
    canary: str
    share: float = 0.0
    shadow: bool = False
    baseline_window: VersionWindow = field(default_factory=VersionWindow)
    canary_window: VersionWindow = field(default_factory=VersionWindow)
    previous_baseline: VersionWindow | None = None
    retried: int = 0
    rng: random.Random = field(default_factory=random.Random)
    epoch: int = 0
    """Counts `reset_windows` calls: with several frontends, the control process sends it
    when it collects their windows, and a frontend resets its own when it changed."""

    def enter_step(self, share: float, shadow: bool) -> None:
        """Begin a step: its share (or shadow) and fresh windows; the baseline's window of
        the step that ends is kept as `previous_baseline` when it saw any query."""
        if self.baseline_window.queries:
            self.previous_baseline = self.baseline_window
        self.share, self.shadow = share, shadow
        self.baseline_window, self.canary_window = VersionWindow(), VersionWindow()

    def reset_windows(self) -> None:
        """Start both windows afresh (the step's warm-up: what came before is dropped)."""
        self.epoch += 1
        self.baseline_window, self.canary_window = VersionWindow(), VersionWindow()

    def window_of(self, version: str) -> VersionWindow | None:
        """The window of `version` (the baseline's or the canary's), else None."""
        if version == self.canary:
            return self.canary_window
        return self.baseline_window if version == self.baseline else None

    def to_canary(self) -> bool:
        """Whether this query goes to the canary (traffic steps)."""
        return not self.shadow and self.share > 0 and self.rng.random() < self.share
