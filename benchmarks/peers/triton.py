"""NVIDIA Triton through PyTriton: the `nvidia-pytriton` wheel bundles a real `tritonserver`
(it runs on CPU here), whose Python backend stub hands each batch to the model's function in
the service's own process; the Open Inference Protocol (V2) over REST, Triton's dynamic
batching for its own batching."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.peers.procs import free_port
from benchmarks.peers.system import Instance, System, service_dir
from benchmarks.peers.v2 import v2_label, v2_request

__all__ = ["Triton", "start_triton", "triton_environment"]

SERVICES = Path(__file__).parent / "services"
MAX_BATCH_SIZE, MAX_QUEUE_DELAY_US = 64, 2000
"""As in services/triton_service.py."""


def library_dir(python: Path) -> str:
    """The `lib/` of the interpreter `python` was made from: where its libpython lies."""
    argv = [str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"]
    found = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    return found.stdout.strip()


def triton_environment(python: Path) -> dict[str, str]:
    """LD_LIBRARY_PATH with the interpreter's own libpython first: the Python backend stub
    links `libpython3.X.so`, and another build of it (the system's) breaks the stdlib."""
    paths = [library_dir(python), os.environ.get("LD_LIBRARY_PATH", "")]
    return {"LD_LIBRARY_PATH": os.pathsep.join(filter(None, paths))}


class Triton(System):
    """`python triton_service.py` (PyTriton's `Triton().bind(...).serve()`), one model
    instance."""

    name = "triton"
    requirements = ("torch", "triton")
    batching = f"PyTriton `DynamicBatcher(max_queue_delay_microseconds={MAX_QUEUE_DELAY_US})`, " \
        f"max_batch_size={MAX_BATCH_SIZE}; sklearn: max_batch_size=1"  # fmt: skip

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        return start_triton(self, workload, scratch, python, "cpu")

    def decode(self, workload: str, body: bytes) -> Any:
        return v2_label(workload, body)


def start_triton(system: System, workload: str, scratch: Path, python: Path,
                 device: str) -> Instance:  # fmt: skip
    """Serve `workload` through PyTriton on `device` from `scratch`."""
    directory = service_dir(scratch)
    shutil.copy(SERVICES / "triton_service.py", directory / "triton_service.py")
    port = free_port()
    argv = [str(python), "triton_service.py", str(port), workload, device]
    env = {**triton_environment(python), "TMPDIR": str(directory)}
    return system.launch(workload, argv, directory, v2_request(workload, port), env)
