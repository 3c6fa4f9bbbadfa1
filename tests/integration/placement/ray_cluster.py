"""A local multi-node Ray cluster that a test starts, drives and stops (only its own processes).

The nodes run under `tests.integration.placement.ray_nodes` in a process of their own
session, with a private temp directory and auth token, so nothing machine-wide (`/tmp/ray`,
`~/.ray`) is touched and no other Ray cluster on the machine is seen or stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

COMMAND_TIMEOUT_S = 90.0


class LocalRayCluster:
    """The nodes' driver process, and the environment a Ray client of this cluster needs."""

    def __init__(self) -> None:
        # Short and private: Ray puts Unix sockets in it (paths are limited to ~107 bytes).
        self.temp_dir = Path(tempfile.mkdtemp(prefix="clipray-", dir="/tmp"))
        token = self.temp_dir / "auth_token"
        token.write_text(secrets.token_hex(32))
        self.env = {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_TMPDIR": str(self.temp_dir),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        """What a Ray client of this cluster (the Clipper server) needs in its environment."""
        # The nodes' processes (and so the replicas' unpacked artifacts) use it for temp files.
        node_env = {**os.environ, **self.env, "TMPDIR": str(self.temp_dir)}
        self.address = ""
        self._log = open(self.temp_dir / "nodes.log", "ab")  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.placement.ray_nodes"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=node_env,
            start_new_session=True,
        )

    def command(self, **command: Any) -> dict[str, Any]:
        """Send one command to the nodes' driver; its answer (RuntimeError on error)."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(json.dumps(command).encode() + b"\n")
        self._process.stdin.flush()
        line = _read_line(self._process, COMMAND_TIMEOUT_S)
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"ray_nodes {command['op']} failed:\n{answer['error']}")
        return answer

    def start_head(self, ip: str, resources: dict[str, float], **system_config: Any) -> str:
        """Start the head node; returns the cluster's address (its GCS)."""
        answer = self.command(op="head", ip=ip, resources=resources, system_config=system_config)
        self.address = str(answer["address"])
        return str(answer["node_id"])

    def add_node(self, ip: str, resources: dict[str, float]) -> tuple[int, str]:
        """Start a worker node; its index (for `remove_node`) and Ray node id."""
        answer = self.command(op="add", ip=ip, resources=resources)
        return int(answer["node"]), str(answer["node_id"])

    def remove_node(self, index: int) -> None:
        """Kill a worker node's processes abruptly, as when a machine is lost."""
        self.command(op="remove", node=index)

    def close(self) -> None:
        """Shut the cluster down; kill what is left of the process group we started."""
        with contextlib.suppress(Exception):
            if self._process.poll() is None:
                self.command(op="shutdown")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(10)
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()
        self._log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _read_line(process: subprocess.Popen[bytes], timeout_s: float) -> bytes:
    """The next line of the process's stdout, bounded in time."""
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise TimeoutError(f"ray_nodes did not answer within {timeout_s:g} s")
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"ray_nodes exited with {process.wait()}")
    return line


@contextlib.contextmanager
def local_ray_cluster() -> Iterator[LocalRayCluster]:
    """A LocalRayCluster, closed afterwards."""
    cluster = LocalRayCluster()
    try:
        yield cluster
    finally:
        cluster.close()
