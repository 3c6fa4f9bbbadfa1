"""Deploy a Python function (a closure) or a model class: Clipper's python deployer.

A function takes a list of inputs and returns a list of outputs of the same length. It is
serialised with cloudpickle into a `python_closure` artifact, uploaded, registered, and the
call returns once its replicas are ready. A model class has `load(self, path)` (called once
per worker) and `predict(self, inputs)` (per batch; it may be `async def`).

The model's environment is recorded with it: `environment="capture"` (the default) pins
the installed versions of the packages the function refers to; a requirements file path
or a list of requirement strings replaces that; `pkgs_to_install` adds to either. The
server runs the model on its own interpreter when that satisfies the environment, else in
a virtual environment it builds once and caches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clipper.artifacts.python import class_artifact, closure_artifact
from clipper.environments.declare import EnvironmentArg
from clipper_admin.clipper_admin import ClipperConnection, Version
from clipper_admin.deployers._common import deploy_built

__all__ = ["create_endpoint", "deploy_model_class", "deploy_python_closure"]


def deploy_python_closure(
    clipper_conn: ClipperConnection,
    name: str,
    version: Version,
    input_type: str,
    func: Callable[[list[Any]], Any],
    base_image: str = "default",
    labels: Sequence[str] | None = None,
    registry: str | None = None,
    num_replicas: int | None = None,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
    environment: EnvironmentArg = "capture",
    resources: Mapping[str, Any] | None = None,
    autoscaling: Mapping[str, Any] | None = None,
) -> None:
    """Deploy `func` as version `version` of model `name`; it becomes the current version.

    `base_image` is recorded as the container name; `registry` is accepted and ignored.
    `resources` is what each replica asks of its node with the Ray placement, e.g.
    `{"num_cpus": 1, "num_gpus": 0.5}` (see clipper.core.resources); `autoscaling`
    (`{"min_replicas", "max_replicas", ...}`) scales it against its SLO.
    """
    artifact = closure_artifact(
        func, environment=environment, pkgs_to_install=pkgs_to_install or ()
    )
    deploy_built(clipper_conn, name, version, input_type, artifact, base_image, labels,
                 num_replicas, batch_size, resources, autoscaling)  # fmt: skip


def deploy_model_class(
    clipper_conn: ClipperConnection,
    name: str,
    version: Version,
    input_type: str,
    model_class: type | object,
    model_data_path: str | None = None,
    labels: Sequence[str] | None = None,
    num_replicas: int | None = None,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
    environment: EnvironmentArg = "capture",
    resources: Mapping[str, Any] | None = None,
    autoscaling: Mapping[str, Any] | None = None,
) -> None:
    """Deploy a model class (or an instance of one): each worker instantiates it (a class
    with no arguments), calls `load(path)` once with a copy of `model_data_path` (a file or
    directory, optional), then `predict(inputs)` per batch. `resources` and `autoscaling` as
    for closures."""
    artifact = class_artifact(
        model_class,
        model_data_path=model_data_path,
        environment=environment,
        pkgs_to_install=pkgs_to_install or (),
    )
    deploy_built(clipper_conn, name, version, input_type, artifact, "python-class", labels,
                 num_replicas, batch_size, resources, autoscaling)  # fmt: skip


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
    num_replicas: int | None = None,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
    environment: EnvironmentArg = "capture",
    resources: Mapping[str, Any] | None = None,
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
        environment,
        resources,
    )
    clipper_conn.link_model_to_app(name, name)
