"""Model selection: which linked models answer an app's queries, and how they learn.

Each policy is stateless code (`base.SelectionPolicy`) plus an explicit, serialisable
`PolicyState`. `configure` validates a policy name and its parameters and builds it:

    single          the first linked model (Clipper's behaviour; the default)
    ab              a fixed weighted split, sticky per uid
    epsilon_greedy  the best estimated model, a random one with probability epsilon
    thompson        Thompson sampling (Beta-Bernoulli or Gaussian)
    exp3            adversarial bandit (Exp3 with weight sharing)
    exp4            an ensemble of every linked model, combined by learned weights
    shadow          the primary answers, shadows are mirrored and recorded

Parameters every policy takes: `loss` (`exact` or `squared`, how feedback labels become
rewards), `per_user` (keep one state per uid), `max_users` (how many, 10000) and `seed`
(seeds the policy's random generator; absent: random).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from clipper.core.exceptions import InvalidRequest
from clipper.selection.ab import ABPolicy
from clipper.selection.base import SelectionPolicy
from clipper.selection.epsilon_greedy import EpsilonGreedyPolicy
from clipper.selection.exp3 import Exp3Policy
from clipper.selection.exp4 import Exp4Policy
from clipper.selection.losses import LOSSES
from clipper.selection.params import choice, flag, number
from clipper.selection.shadow import ShadowPolicy
from clipper.selection.single import SinglePolicy
from clipper.selection.thompson import ThompsonPolicy

__all__ = ["COMMON_PARAMS", "POLICIES", "PolicyConfig", "configure"]

_CLASSES = (
    SinglePolicy, ABPolicy, EpsilonGreedyPolicy, ThompsonPolicy, Exp3Policy, Exp4Policy,
    ShadowPolicy,
)  # fmt: skip
POLICIES: dict[str, Callable[[Mapping[str, Any]], SelectionPolicy]] = {
    cls.name: cls.from_params for cls in _CLASSES
}
"""Policy names and the factories that build them from parameters."""
_PARAMS: dict[str, frozenset[str]] = {cls.name: cls.PARAMS for cls in _CLASSES}
COMMON_PARAMS = frozenset({"loss", "per_user", "max_users", "seed"})


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """A validated policy with the settings the server applies around it."""

    name: str
    policy: SelectionPolicy
    loss: Callable[[Any, Any], float]
    per_user: bool
    max_users: int
    seed: int | None


def configure(name: str, params: Mapping[str, Any]) -> PolicyConfig:
    """Build policy `name` from `params`; InvalidRequest for an unknown name or parameter,
    or an invalid value."""
    factory = POLICIES.get(name)
    if factory is None:
        raise InvalidRequest(f"Unknown selection policy {name!r}; expected one of: "
                             + ", ".join(POLICIES))  # fmt: skip
    unknown = set(params) - _PARAMS[name] - COMMON_PARAMS
    if unknown:
        allowed = ", ".join(sorted(_PARAMS[name] | COMMON_PARAMS))
        raise InvalidRequest(
            f"Unknown parameter(s) {', '.join(sorted(unknown))} for policy {name!r}; "
            f"allowed: {allowed}"
        )
    loss = choice(params, "loss", "exact", LOSSES)
    seed = params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequest("policy parameter 'seed' must be an integer")
    return PolicyConfig(
        name=name,
        policy=factory({**params, "loss": loss}),
        loss=LOSSES[loss],
        per_user=flag(params, "per_user", False),
        max_users=int(number(params, "max_users", 10_000, 1, 10_000_000)),
        seed=seed,
    )
