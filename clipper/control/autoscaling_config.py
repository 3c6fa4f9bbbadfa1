"""A model version's autoscaling settings: a frozen value, parsed and validated once.

Off unless set (deploy time or `set_autoscaling`); stored in the registry as the JSON of
`to_dict()`. Each field is documented in README.md#autoscaling; the defaults follow what
Ray Serve's AutoscalingConfig and KServe's windows lead users to expect: scale up within
seconds of the SLO being eaten into, scale down one replica at a time after a minute idle,
and (with `min_replicas` 0) to no replica after five minutes without a query.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clipper.core.exceptions import InvalidRequest

__all__ = ["MAX_AUTOSCALED_REPLICAS", "AutoscalingConfig"]

MAX_AUTOSCALED_REPLICAS = 1024  # the registry's bound on any version's replica target


@dataclass(frozen=True, slots=True)
class AutoscalingConfig:
    """When and how far the autoscaler moves a version's replica target.

    Invariants (checked by `parse`): 0 <= min_replicas <= max_replicas <= 1024 and
    max_replicas >= 1; every ratio in (0, 1] except `upscaling_factor` > 1; every window
    and delay > 0;
    downscale_queue_delay_ratio < target_queue_delay_ratio (the band between them is the
    hysteresis: no step is taken in it).
    """

    min_replicas: int = 1
    """0 lets the version scale to zero (`scale_to_zero_after_s`); a query then starts one."""
    max_replicas: int = 1
    target_queue_delay_ratio: float = 0.2
    """Scale up when queries wait in the batch queue, on average over `upscale_window_s`,
    more than this share of the tightest SLO of the apps the model serves."""
    upscale_window_s: float = 5.0
    """The window the scale-up reads (KServe's panic window): short, so up is fast."""
    upscaling_factor: float = 2.0
    """At most this many times the replicas per step up (and always at least one more)."""
    downscale_queue_delay_ratio: float = 0.05
    """Scale down only while the queue delay stays below this share of the SLO."""
    target_utilization: float = 0.7
    """...and while the in-flight load would keep one replica fewer at most this busy."""
    downscale_delay_s: float = 60.0
    """...for this long (every observation of the window): then one replica goes."""
    scale_to_zero_after_s: float = 300.0
    """With `min_replicas` 0: no query for this long, and every replica goes."""

    @classmethod
    def parse(cls, value: object) -> AutoscalingConfig:
        """Validate a JSON object (unknown keys and bad values raise InvalidRequest)."""
        if not isinstance(value, Mapping):
            raise InvalidRequest(f"'autoscaling' must be a JSON object or null, got {value!r:.60}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(str(key) for key in value if key not in known)
        if unknown:
            raise InvalidRequest(
                f"unknown autoscaling setting(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}"
            )
        if "max_replicas" not in value:
            raise InvalidRequest("autoscaling needs 'max_replicas'")
        defaults = cls()
        fields = {name: _number(value, name, getattr(defaults, name)) for name in known}
        config = cls(**fields)
        config._check()
        return config

    @property
    def scales_to_zero(self) -> bool:
        """Whether the version may have no replica (`min_replicas` 0)."""
        return self.min_replicas == 0

    def to_dict(self) -> dict[str, Any]:
        """Every setting, as `parse` reads it back."""
        return dataclasses.asdict(self)

    def _check(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas <= MAX_AUTOSCALED_REPLICAS or (
            self.max_replicas < 1
        ):
            raise InvalidRequest(
                "autoscaling needs 0 <= min_replicas <= max_replicas <= "
                f"{MAX_AUTOSCALED_REPLICAS} and max_replicas >= 1, got {self.min_replicas} "
                f"and {self.max_replicas}"
            )
        for name in ("target_queue_delay_ratio", "downscale_queue_delay_ratio",
                     "target_utilization"):  # fmt: skip
            if not 0 < getattr(self, name) <= 1:
                raise InvalidRequest(f"autoscaling {name} must be in (0, 1]")
        if self.downscale_queue_delay_ratio >= self.target_queue_delay_ratio:
            raise InvalidRequest(
                "autoscaling downscale_queue_delay_ratio must be below target_queue_delay_ratio"
            )
        if not self.upscaling_factor > 1:
            raise InvalidRequest("autoscaling upscaling_factor must be above 1")
        for name in ("upscale_window_s", "downscale_delay_s", "scale_to_zero_after_s"):
            if not 0 < getattr(self, name) <= 86_400:
                raise InvalidRequest(f"autoscaling {name} must be in (0, 86400] seconds")


def _number(value: Mapping[str, Any], name: str, default: int | float) -> Any:
    """The setting as the default's type (int or float); InvalidRequest otherwise."""
    given = value.get(name, default)
    integral = isinstance(default, int)
    ok = isinstance(given, int) if integral else isinstance(given, (int, float))
    if isinstance(given, bool) or not ok or not math.isfinite(given):
        kind = "an integer" if integral else "a number"
        raise InvalidRequest(f"autoscaling {name} must be {kind}, got {given!r:.60}")
    return given if integral else float(given)
