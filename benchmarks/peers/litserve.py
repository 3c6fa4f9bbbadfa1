"""LitServe (Lightning AI): a `LitAPI` served by `LitServer` (FastAPI and uvicorn in front,
a separate inference worker process), with LitServe's own batching."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson

from benchmarks.peers import model
from benchmarks.peers.procs import free_port
from benchmarks.peers.system import Instance, Request, System, service_dir

__all__ = ["LitServe"]

SERVICES = Path(__file__).parent / "services"
MAX_BATCH_SIZE, BATCH_TIMEOUT_S = 32, 0.002
"""As in services/litserve_service.py."""


class LitServe(System):
    """`python litserve_service.py PORT WORKLOAD`: one worker, one API server."""

    name = "litserve"
    requirements = ("torch", "litserve")
    batching = f"`LitAPI(max_batch_size={MAX_BATCH_SIZE}, batch_timeout={BATCH_TIMEOUT_S})`; " \
        "sklearn: max_batch_size=1"  # fmt: skip

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        directory = service_dir(scratch)
        shutil.copy(SERVICES / "litserve_service.py", directory / "litserve_service.py")
        port = free_port()
        body = orjson.dumps({"input": model.workload_input(workload)})
        argv = [str(python), "litserve_service.py", str(port), workload]
        return self.launch(workload, argv, directory, Request(port, "/predict", body))

    def decode(self, workload: str, body: bytes) -> Any:
        return orjson.loads(body)["output"]
