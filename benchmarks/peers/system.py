"""The common interface of the systems under test, and the start-up steps they share."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import math
import os
import shutil
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.peers import model
from benchmarks.peers.procs import ProcessTree

if TYPE_CHECKING:
    from benchmarks.peers.results import Ceiling

__all__ = [
    "WORKLOADS",
    "Instance",
    "Request",
    "System",
    "expected_output",
    "post",
    "service_dir",
    "valid_answer",
]

WORKLOADS = ("noop", "sklearn", "sklearn-batch", "cnn", "text")
"""No-op on 10 floats; LogisticRegression on one row, batching off; the same, batching on;
the CNN on one 3x64x64 image and TF-IDF + LogisticRegression on one string, batching on."""

REQUIREMENTS_DIR = Path(__file__).parent / "requirements"
MODEL_SOURCE = Path(model.__file__)
INSTALL_TIMEOUT_S = 1800.0
READY_TIMEOUT_S = 180.0
_POLL_INTERVAL_S = 0.02


@dataclass(frozen=True)
class Request:
    """The one request the load generator repeats against a running system."""

    port: int
    path: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass
class Instance:
    """A running system serving one workload."""

    tree: ProcessTree
    request: Request
    startup_s: float
    notes: dict[str, float] = field(default_factory=dict)
    count_defaults: Callable[[], int] | None = None
    """Answers given by default (not by the model) so far, where the system can tell."""


def post(request: Request, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """Send `request` once; returns its status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", request.port, timeout=timeout_s)
    try:
        connection.request("POST", request.path, request.body, dict(request.headers))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@functools.cache
def expected_output(workload: str) -> Any:
    """What a correct model answers to the workload's input."""
    if workload == "noop":
        return model.NOOP_INPUT
    if workload == "cnn":
        return model.predict_images(model.build_cnn(), [model.CNN_INPUT])[0]
    if workload == "text":
        return model.predict_texts(model.train_text_model(), [model.TEXT_INPUT])[0]
    return model.predict_rows(model.train_sklearn_model(), [model.SKLEARN_ROW])[0]


def _same(answer: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return (
            isinstance(answer, list)
            and len(answer) == len(expected)
            and all(
                math.isclose(float(a), b, abs_tol=1e-6)
                for a, b in zip(answer, expected, strict=True)
            )
        )
    return bool(answer == expected)


class System(ABC):
    """One system under test: how to install it, start it per workload and read its answers."""

    name: str = ""
    workloads: tuple[str, ...] = WORKLOADS
    requirements: tuple[str, ...] = ()
    """Requirement files (stems under requirements/) installed in order into its own venv."""
    environment: str = ""
    """The name of that venv under the venv root; the system's own name where empty."""
    batching: str = ""
    """How its own batching is configured in the batched workloads (for the report)."""
    base_python: str = "python3"
    """The interpreter its venv is made from."""
    in_process: tuple[str, ...] = ()
    """Workloads it measures in-process (`ceiling`) instead of serving them."""

    def python(self, venv_root: Path) -> Path:
        """The interpreter the system runs on: its own venv's, or this one without any."""
        if not self.requirements:
            return Path(sys.executable)
        return self.venv(venv_root) / "bin" / "python"

    def venv(self, venv_root: Path) -> Path:
        """Its own virtual environment (shared by systems with the same `environment`)."""
        return venv_root / (self.environment or self.name)

    def install(self, venv_root: Path) -> None:
        """Create the venv and install the pinned requirements, unless already done."""
        if not self.requirements:
            return
        venv = self.venv(venv_root)
        files = [REQUIREMENTS_DIR / f"{stem}.txt" for stem in self.requirements]
        digest = hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()
        marker = venv / ".installed"
        if marker.exists() and marker.read_text() == digest:
            return
        shutil.rmtree(venv, ignore_errors=True)
        _run([self.base_python, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        _run([*pip, "--upgrade", "pip"])
        for path in files:
            _run([*pip, "-r", str(path)])
        marker.write_text(digest)

    def ceiling(self, workload: str, scratch: Path, python: Path, seconds: float) -> Ceiling:
        """The model's in-process batched throughput on one of `in_process`."""
        raise NotImplementedError(f"{self.name} serves {workload}; it does not measure it")

    @abstractmethod
    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        """Start serving `workload` from `scratch`; return once a valid answer came back."""

    @abstractmethod
    def decode(self, workload: str, body: bytes) -> Any:
        """The model output inside a response body."""

    def valid(self, workload: str, status: int, body: bytes) -> bool:
        """True for a 200 whose body holds the model's correct output."""
        return valid_answer(self, workload, status, body)

    def launch(
        self,
        workload: str,
        argv: Sequence[str],
        scratch: Path,
        request: Request,
        env: Mapping[str, str] | None = None,
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> Instance:
        """Spawn `argv` in `scratch` and wait until `request` is answered correctly; the
        start-up time runs from the spawn to that first correct answer."""
        started = time.monotonic()
        tree = ProcessTree(argv, scratch, {**os.environ, **(env or {})}, scratch / "server.log")
        try:
            wait_valid(self, workload, tree, request, started + ready_timeout_s)
        except BaseException:
            tree.stop()
            raise
        return Instance(tree, request, time.monotonic() - started)


def valid_answer(system: System, workload: str, status: int, body: bytes) -> bool:
    """True for a 200 whose body `system` decodes into the expected output."""
    if status != 200:
        return False
    try:
        return _same(system.decode(workload, body), expected_output(workload))
    except (ValueError, KeyError, IndexError, TypeError):
        return False


def wait_valid(
    system: System, workload: str, tree: ProcessTree, request: Request, deadline: float
) -> None:
    """Poll `request` until it is answered correctly; raise if the tree dies or time runs out."""
    last = "no answer"
    while time.monotonic() < deadline:
        if not tree.alive():
            code = tree.process.returncode
            raise RuntimeError(f"exited during start-up ({code}): {tree.last_error()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, body = post(request, timeout_s=2.0)
            if system.valid(workload, status, body):
                return
            last = f"{status} {' '.join(body[:200].decode(errors='replace').split())}"
        time.sleep(_POLL_INTERVAL_S)
    raise TimeoutError(f"no valid answer within the start-up timeout (last: {last})")


def _run(argv: Sequence[str]) -> None:
    result = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(argv[:4])} failed: {' '.join(tail)}")


def service_dir(scratch: Path) -> Path:
    """Copy the shared model module into `scratch` (as `peer_model.py`) and return it."""
    shutil.copy(MODEL_SOURCE, scratch / "peer_model.py")
    return scratch
