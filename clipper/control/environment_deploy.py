"""The server's side of a deploy's environment: prepare it before a version is registered,
and describe it in model info."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clipper.artifacts.format import artifact_environment
from clipper.core.exceptions import ClipperError, DeployFailed
from clipper.environments.manager import EnvironmentManager

__all__ = ["environment_info", "prepare_environment"]

EventSink = Callable[[str, Mapping[str, object]], None]


async def prepare_environment(
    manager: EnvironmentManager | None,
    model: str,
    artifact: Path,
    record_event: EventSink,
    *,
    discard_on_failure: bool,
) -> dict[str, Any]:
    """Make the interpreter for the artifact's environment ready (building and caching a
    venv when the server's interpreter does not satisfy it); returns its status.

    On failure raises DeployFailed (EnvironmentBuildFailed with the installer's output)
    and, with `discard_on_failure`, removes the uploaded artifact: nothing is left behind.
    """
    environment = artifact_environment(artifact)
    if manager is None or environment is None:
        return {"key": None, "state": "server"}
    status = manager.status(environment)
    record_event("environment_resolved", {"model": model, "environment": status["key"],
                                          "state": status["state"]})  # fmt: skip
    if status["state"] in ("server", "ready"):
        return status
    try:
        await manager.ensure(environment, model)
    except ClipperError as exc:
        if discard_on_failure:
            shutil.rmtree(artifact, ignore_errors=True)
        if isinstance(exc, DeployFailed):
            raise
        raise DeployFailed(str(exc)) from exc
    return manager.status(environment)


def environment_info(manager: EnvironmentManager | None, artifact: Path) -> dict[str, Any]:
    """`{"environment": recorded spec or None, "environment_status": state}` for model info."""
    try:
        environment = artifact_environment(artifact)
    except ClipperError:
        return {"environment": None, "environment_status": "unknown"}
    if environment is None:
        return {"environment": None, "environment_status": "server"}
    status = manager.status(environment) if manager is not None else {"state": "server"}
    return {
        "environment": {**environment.to_json(), "key": status.get("key")},
        "environment_status": status["state"],
    }
