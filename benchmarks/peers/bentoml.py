"""BentoML: a new-style `@bentoml.service` with one API, served by `bentoml serve`;
`batchable=True` for its own (adaptive) batching."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson

from benchmarks.peers import model
from benchmarks.peers.procs import free_port
from benchmarks.peers.system import Instance, Request, System, service_dir

__all__ = ["BentoML"]

SERVICES = Path(__file__).parent / "services"
SERVICE_CLASSES = {"noop": "Noop", "sklearn": "Sklearn", "sklearn-batch": "SklearnBatch",
                   "cnn": "Cnn", "text": "Text"}  # fmt: skip
BATCHABLE = ("sklearn-batch", "cnn", "text")
"""Workloads served by a batchable API, which takes (and answers) a batch: here of one."""


class BentoML(System):
    """`bentoml serve bentoml_service:<class>` with one worker."""

    name = "bentoml"
    requirements = ("torch", "bentoml")
    batching = "`@bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=1000)` " \
        "(the CNN: 10000)"  # fmt: skip

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        directory = service_dir(scratch)
        shutil.copy(SERVICES / "bentoml_service.py", directory / "bentoml_service.py")
        port = free_port()
        data = model.workload_input(workload)
        if workload in BATCHABLE:
            data = [data]
        request = Request(port, "/predict", orjson.dumps({"input": data}))
        target = f"bentoml_service:{SERVICE_CLASSES[workload]}"
        argv = [str(python.parent / "bentoml"), "serve", target, "--host", "127.0.0.1",
                "--port", str(port)]  # fmt: skip
        env = {"BENTOML_DO_NOT_TRACK": "true", "BENTOML_HOME": str(directory / "bentoml-home")}
        return self.launch(workload, argv, directory, request, env)

    def decode(self, workload: str, body: bytes) -> Any:
        answer = orjson.loads(body)
        return answer[0] if workload in BATCHABLE else answer["output"]
