"""Uploading a built artifact the way every deployer does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clipper_admin.clipper_admin import ClipperConnection, Version

__all__ = ["deploy_built"]


def deploy_built(
    clipper_conn: ClipperConnection,
    name: str,
    version: Version,
    input_type: str,
    artifact: bytes,
    container_name: str,
    labels: Sequence[str] | None,
    num_replicas: int | None,
    batch_size: int,
    resources: Mapping[str, Any] | None = None,
    autoscaling: Mapping[str, Any] | None = None,
) -> None:
    """Upload `artifact` as `name:version`, prepare its environment (progress on stderr),
    start its replicas and return once they answer; it becomes the current version.
    `num_replicas` None: as many as the current version has (1 for a new model).
    `resources` is what each replica asks of its node (Ray placement); `autoscaling` lets
    the server scale it against its SLO (ClipperConnection.set_autoscaling)."""
    clipper_conn.deploy_artifact(
        name,
        version,
        input_type,
        artifact,
        container_name=container_name,
        labels=labels,
        num_replicas=num_replicas,
        batch_size=batch_size,
        resources=resources,
        autoscaling=autoscaling,
    )
