"""The Ray actor behind one replica: it unpacks the artifact on its node and runs the worker.

This module runs on every Ray node and imports nothing of Ray at import time, so the class
also works (and is tested) as a plain object. The actor is an async actor: its methods run
on one event loop thread that lives as long as the actor, and the worker is forked from
that thread, so the worker's parent-death signal (PR_SET_PDEATHSIG, which Linux ties to the
forking thread) fires exactly when the actor process dies. The data path never crosses
Ray: the worker dials the server's RPC address itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from clipper.rpc.secret import SECRET_ENV
from clipper.worker.credential_handover import CREDENTIAL_FD_FLAG, credential_pipe
from clipper.worker.rlimits import reap_cgroup

__all__ = ["ReplicaActor", "unpack_artifact"]

LOG_NAME = "worker.log"


def unpack_artifact(archive: bytes, target: Path) -> Path:
    """Unpack a (gzip) tar artifact into `target/artifact`; return that directory."""
    directory = target / "artifact"
    directory.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
        tar.extractall(directory, filter="data")
    return directory


class ReplicaActor:
    """Runs `python -m clipper.worker` on this node and reports on it.

    `worker_args` is the worker's command line after the interpreter, less `--artifact` and
    `--parent-pid`, which only this node knows; `secret` is what the worker registers
    with (its replica's one-time credential), handed to it over a pipe.
    """

    def __init__(
        self, name: str, worker_args: list[str], artifact: bytes, secret: str = ""
    ) -> None:
        self._name = name
        self._worker_args = worker_args
        self._secret = secret
        self._artifact = artifact
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        # Ray prefixes the actor's log lines with this.
        return f"ReplicaActor({self._name})"

    async def start(self) -> dict[str, Any]:
        """Unpack the artifact and start the worker; where it runs (pid, node)."""
        if self._process is None:
            self._directory = Path(tempfile.mkdtemp(prefix="clipper-replica-"))
            artifact = unpack_artifact(self._artifact, self._directory)
            self._artifact = b""
            self._process = self._spawn(artifact, self._directory / LOG_NAME)
        return {"pid": self._process.pid, **_node_identity()}

    def _spawn(self, artifact: Path, log_path: Path) -> subprocess.Popen[bytes]:
        args = [*self._worker_args, "--artifact", str(artifact), "--parent-pid", str(os.getpid())]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop(SECRET_ENV, None)
        handover = credential_pipe(self._secret)
        args += [CREDENTIAL_FD_FLAG, str(handover)]
        try:
            with open(log_path, "ab") as log:
                return subprocess.Popen(
                    [sys.executable, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    pass_fds=(handover,),
                )
        finally:
            os.close(handover)

    async def wait(self) -> int:
        """Wait for the worker to exit; its exit code (negative: killed by that signal;
        MEMORY_LIMIT_EXIT_CODE: killed for exceeding its memory cgroup's limit)."""
        process = self._require_process()
        code = await asyncio.get_running_loop().run_in_executor(None, process.wait)
        return reap_cgroup(process.pid, code)

    async def send_signal(self, signum: int) -> None:
        """Send `signum` to the worker, if it still runs."""
        process = self._require_process()
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.Signals(signum))

    async def read_log(self, offset: int, limit: int) -> tuple[bytes, int]:
        """Up to `limit` bytes of the worker's output from `offset`, and the next offset."""
        if self._directory is None:
            return b"", offset
        chunk = _read_chunk(self._directory / LOG_NAME, offset, limit)
        return chunk, offset + len(chunk)

    async def finish(self) -> None:
        """Kill the worker if it still runs and remove the unpacked artifact and log."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            await asyncio.get_running_loop().run_in_executor(None, self._process.wait)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"replica {self._name} has not been started")
        return self._process


def _read_chunk(path: Path, offset: int, limit: int) -> bytes:
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            return file.read(limit)
    except OSError:
        return b""


def _node_identity() -> dict[str, Any]:
    """This node's Ray id and address, when running inside a Ray worker."""
    identity: dict[str, Any] = {"hostname": socket.gethostname(), "node_id": None, "node_ip": None}
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        identity["node_id"] = ray.get_runtime_context().get_node_id()
        identity["node_ip"] = ray.util.get_node_ip_address()
    return identity
