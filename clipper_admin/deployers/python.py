"""Deploy a Python function (a closure) as a model version: Clipper's python deployer.

The function takes a list of inputs and returns a list of outputs of the same length. It is
serialised with cloudpickle into a `python_closure` artifact, uploaded, registered, and the
call returns once its replicas are ready.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from clipper.artifacts import closure_artifact
from clipper_admin.clipper_admin import ClipperConnection, Version

__all__ = ["create_endpoint", "deploy_python_closure"]


def deploy_python_closure(
    clipper_conn: ClipperConnection,
    name: str,
    version: Version,
    input_type: str,
    func: Callable[[list[Any]], Any],
    base_image: str = "default",
    labels: Sequence[str] | None = None,
    registry: str | None = None,
    num_replicas: int = 1,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
) -> None:
    """Deploy `func` as version `version` of model `name`; it becomes the current version.

    `base_image` is recorded as the container name; `registry` is accepted and ignored.
    """
    artifact = closure_artifact(func, pkgs_to_install=pkgs_to_install or ())
    clipper_conn.deploy_artifact(
        name,
        version,
        input_type,
        artifact,
        container_name=base_image,
        labels=labels,
        num_replicas=num_replicas,
        batch_size=batch_size,
    )


def create_endpoint(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    func: Callable[[list[Any]], Any],
    default_output: str = "None",
    version: Version = 1,
    slo_micros: int = 3000000,
    labels: Sequence[str] | None = None,
    registry: str | None = None,
    base_image: str = "default",
    num_replicas: int = 1,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
) -> None:
    """Register app `name`, deploy `func` as model `name`, and link the two."""
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy_python_closure(
        clipper_conn,
        name,
        version,
        input_type,
        func,
        base_image,
        labels,
        registry,
        num_replicas,
        batch_size,
        pkgs_to_install,
    )
    clipper_conn.link_model_to_app(name, name)
