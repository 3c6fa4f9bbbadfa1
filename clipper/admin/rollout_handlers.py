"""The admin API's canary-rollout operations (README.md#canary-rollouts): each takes the
service and the parsed body, as the handlers of `api.py` do."""

from __future__ import annotations

from typing import Any

from clipper.admin.request_fields import optional, required
from clipper.control import rollouts
from clipper.control.rollout_plan import RolloutPlan
from clipper.control.service import ClusterService
from clipper.core.exceptions import InvalidRequest
from clipper.core.types import validate_version

__all__ = [
    "abort_rollout",
    "get_rollout",
    "parse_rollout_field",
    "pause_rollout",
    "promote_rollout",
    "resume_rollout",
    "start_rollout",
]

Body = dict[str, Any]


def parse_rollout_field(body: Body) -> RolloutPlan | None:
    """`add_model`'s `rollout`: absent, null or false for none; true or a plan object."""
    value = body.get("rollout")
    if value is None or value is False:
        return None
    if value is True:
        return RolloutPlan.parse(None)
    if not isinstance(value, dict):
        raise InvalidRequest("rollout must be true or a rollout plan object")
    return RolloutPlan.parse(value)


def _plan(body: Body) -> RolloutPlan:
    value = body.get("plan")
    if value is not None and not isinstance(value, dict):
        raise InvalidRequest("plan must be a rollout plan object (or absent: the defaults)")
    return RolloutPlan.parse(value)


async def start_rollout(service: ClusterService, body: Body) -> Any:
    return await rollouts.start_rollout(
        service,
        required(body, "model_name", str),
        validate_version(required(body, "model_version", (str, int))),
        _plan(body),
        float(optional(body, "ready_timeout_s", (int, float), 120.0)),
    )


async def get_rollout(service: ClusterService, body: Body) -> Any:
    return rollouts.rollout_status(service, required(body, "model_name", str))


async def promote_rollout(service: ClusterService, body: Body) -> Any:
    return await rollouts.promote_rollout(service, required(body, "model_name", str))


async def pause_rollout(service: ClusterService, body: Body) -> Any:
    return await rollouts.pause_rollout(service, required(body, "model_name", str))


async def resume_rollout(service: ClusterService, body: Body) -> Any:
    return await rollouts.resume_rollout(service, required(body, "model_name", str))


async def abort_rollout(service: ClusterService, body: Body) -> Any:
    return await rollouts.abort_rollout(service, required(body, "model_name", str))
