"""Admin operations on selection policies and pipelines, and policy-state persistence.

Policy state is written behind: the dataplane learns in memory and `flush_policy_states`
(run every `POLICY_FLUSH_INTERVAL_S` by the server, and once more when it stops) writes
the states that changed, one registry transaction per app, never one per query.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from clipper.control.service import ClusterService
from clipper.control.store import Registry
from clipper.core.exceptions import ApplicationNotFound, ClipperError, Conflict
from clipper.dataplane.dataplane import DataPlane
from clipper.selection import configure

__all__ = [
    "POLICY_FLUSH_INTERVAL_S",
    "flush_policy_states",
    "run_policy_flusher",
    "set_app_pipeline",
    "set_app_policy",
]

log = logging.getLogger("clipper.control")

POLICY_FLUSH_INTERVAL_S = 1.0


async def set_app_policy(
    service: ClusterService, app: str, policy: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate and set an app's selection policy; returns the app's info."""
    configure(policy, params)
    _check_weights(service, app, params)
    service.registry.set_app_policy(app, policy, params)
    service.registry.record_event("set_app_policy", {"app": app, "policy": policy})
    await service.refresh()
    return _info(service, app)


def _check_weights(service: ClusterService, app: str, params: Mapping[str, Any]) -> None:
    """`ab` weights and `shadow` roles must name models linked to the app."""
    named = set(params.get("weights") or {})
    for key in ("primary", "shadows"):
        value = params.get(key)
        named.update([value] if isinstance(value, str) else value or [])
    unlinked = named - set(service.registry.linked_models(app))
    if unlinked:
        raise Conflict(
            f"Policy parameters name models not linked to application '{app}': "
            + ", ".join(sorted(unlinked))
        )


async def set_app_pipeline(service: ClusterService, app: str, models: list[str]) -> dict[str, Any]:
    """Make an app a pipeline of `models` (types checked), or plain again with `[]`."""
    service.registry.set_app_pipeline(app, models)
    service.registry.record_event("set_app_pipeline", {"app": app, "models": models})
    await service.refresh()
    return _info(service, app)


def _info(service: ClusterService, app: str) -> dict[str, Any]:
    info = service.app_info(app)
    if info is None:
        raise ApplicationNotFound(f"No application with name '{app}'")
    return info


def flush_policy_states(registry: Registry, dataplane: DataPlane) -> int:
    """Persist every policy state that changed since the last flush; returns how many were
    saved. A state that cannot be saved now (e.g. a locked registry) is kept for the next
    flush."""
    saved = 0
    for app, blob in dataplane.take_dirty_states().items():
        try:
            registry.set_policy_state(app, blob)
        except ApplicationNotFound:
            log.info("app %s was removed before its policy state was saved", app)
        except (ClipperError, sqlite3.Error):
            log.exception("could not save the policy state of app %s; will retry", app)
            dataplane.mark_dirty(app)
        else:
            saved += 1
    return saved


async def run_policy_flusher(
    registry: Registry, dataplane: DataPlane, interval_s: float = POLICY_FLUSH_INTERVAL_S
) -> None:
    """Flush policy states every `interval_s` until cancelled, then once more."""
    try:
        while True:
            await asyncio.sleep(interval_s)
            flush_policy_states(registry, dataplane)
    finally:
        flush_policy_states(registry, dataplane)
