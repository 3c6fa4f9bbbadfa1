"""MLServer: the Open Inference Protocol (V2) over REST; the sklearn model through
mlserver-sklearn, the no-op, the CNN and the text model as custom runtimes; adaptive batching
for its own batching."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from benchmarks.peers.procs import free_port
from benchmarks.peers.system import Instance, System, service_dir
from benchmarks.peers.v2 import v2_label, v2_request

__all__ = ["MLServer"]

SERVICES = Path(__file__).parent / "services"
MAX_BATCH_SIZE, MAX_BATCH_TIME_S = 32, 0.002
BATCHED = ("sklearn-batch", "cnn", "text")
CUSTOM_RUNTIMES = {"noop": "mlserver_runtime.NoopModel", "cnn": "mlserver_runtime.CnnModel",
                   "text": "mlserver_runtime.TextModel"}  # fmt: skip


def model_settings(workload: str) -> dict[str, Any]:
    """model-settings.json of model `bench` for `workload`."""
    if workload in CUSTOM_RUNTIMES:
        settings: dict[str, Any] = {"name": "bench",
                                    "implementation": CUSTOM_RUNTIMES[workload]}  # fmt: skip
    else:
        settings = {"name": "bench", "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib"}}  # fmt: skip
    if workload in BATCHED:
        settings.update(max_batch_size=MAX_BATCH_SIZE, max_batch_time=MAX_BATCH_TIME_S)
    return settings


class MLServer(System):
    """`mlserver start` on a folder with settings.json and one model, `bench`."""

    name = "mlserver"
    requirements = ("torch", "mlserver")
    batching = f"adaptive batching: max_batch_size={MAX_BATCH_SIZE}, " \
        f"max_batch_time={MAX_BATCH_TIME_S} s"  # fmt: skip

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        directory = service_dir(scratch)
        model_dir = directory / "models" / "bench"
        model_dir.mkdir(parents=True)
        shutil.copy(SERVICES / "mlserver_runtime.py", model_dir / "mlserver_runtime.py")
        shutil.copy(directory / "peer_model.py", model_dir / "peer_model.py")  # for the runtimes
        shutil.copy(SERVICES / "mlserver_start.py", directory / "mlserver_start.py")
        (model_dir / "model-settings.json").write_text(json.dumps(model_settings(workload)))
        port = free_port()
        # debug=false: MLServer's production setting (no per-request access log).
        settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
                    "metrics_port": free_port(), "debug": False}  # fmt: skip
        (directory / "settings.json").write_text(json.dumps(settings))
        request = v2_request(workload, port)
        mlserver = python.parent / "mlserver"
        argv = [str(python), "mlserver_start.py", str(mlserver), workload]
        return self.launch(workload, argv, directory, request)

    def decode(self, workload: str, body: bytes) -> Any:
        return v2_label(workload, body)
