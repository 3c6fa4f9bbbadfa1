"""The demo that `clipper start --demo` serves: Clipper's hello-world tutorial."""

from __future__ import annotations

import json
import platform
from typing import Any

import cloudpickle

from clipper.control.service import ClusterService
from clipper.core.records import ModelVersionRecord
from clipper.core.types import InputType, ModelId

__all__ = ["DEMO_APP", "DEMO_MODEL", "deploy_demo", "sum_model"]

DEMO_APP = "hello-world"
DEMO_MODEL = "sum-model"


def sum_model(inputs: list[Any]) -> list[float]:
    """The tutorial's model: the sum of each input vector."""
    return [float(x.sum()) for x in inputs]


async def deploy_demo(service: ClusterService) -> None:
    """Register the demo app and model (once; a restart finds them in the registry)."""
    if service.registry.get_app(DEMO_APP) is None:
        await service.add_app(DEMO_APP, InputType.DOUBLES, "-1.0", 100_000)
    if not service.registry.list_model_versions(DEMO_MODEL):
        path = service.artifact_dir(DEMO_MODEL, "1")
        path.mkdir(parents=True, exist_ok=True)
        (path / "func.pkl").write_bytes(cloudpickle.dumps(sum_model))
        metadata = {
            "kind": "python_closure",
            "python_version": platform.python_version(),
            "cloudpickle_version": cloudpickle.__version__,
        }
        (path / "clipper_model.json").write_text(json.dumps(metadata))
        record = ModelVersionRecord(DEMO_MODEL, "1", InputType.DOUBLES, num_replicas=1)
        await service.add_model(record)
    if DEMO_MODEL not in service.registry.linked_models(DEMO_APP):
        await service.add_links(DEMO_APP, [DEMO_MODEL])
    await service.wait_ready(ModelId(DEMO_MODEL, "1"), timeout_s=60)


def curl_command(host: str, port: int) -> str:
    """A ready-to-paste query of the demo app."""
    return (
        f"curl -X POST -H 'Content-Type: application/json' "
        f"-d '{{\"input\": [1.1, 2.2, 3.3]}}' http://{host}:{port}/{DEMO_APP}/predict"
    )
