"""Start a Clipper server for a benchmark and deploy Python functions on it over HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from clipper.artifacts.python import closure_artifact
from clipper.security import read_admin_token

__all__ = ["BenchServer", "bench_server", "launched_server", "stop_process", "worktree"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BenchServer:
    """A running server and how to reach it."""

    process: subprocess.Popen[bytes]
    query_port: int
    admin_port: int
    state_dir: Path

    @property
    def admin_headers(self) -> dict[str, str]:
        """The bearer token of the admin API (written by the server at first start)."""
        token = read_admin_token(self.state_dir)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def admin(self, operation: str, body: dict[str, Any]) -> Any:
        """Call an admin operation; raise on error."""
        response = httpx.post(
            f"http://127.0.0.1:{self.admin_port}/admin/{operation}",
            json=body,
            headers=self.admin_headers,
            timeout=120,
        )
        if response.status_code != 200:
            raise RuntimeError(f"{operation} failed: {response.text}")
        return response.json()

    def deploy(
        self,
        app: str,
        func: Callable[[list[Any]], list[Any]],
        input_type: str = "doubles",
        batch_size: int = -1,
        slo_us: int = 50_000,
        replicas: int = 1,
        **model_settings: Any,
    ) -> None:
        """Register an app and a model of the same name, link them, wait for replicas."""
        self.admin("add_app", {"name": app, "input_type": input_type,
                               "default_output": "-1", "latency_slo_micros": slo_us})  # fmt: skip
        url = f"http://127.0.0.1:{self.admin_port}/admin/artifacts/{app}/1"
        httpx.put(
            url, content=closure_artifact(func), headers=self.admin_headers, timeout=60
        ).raise_for_status()
        self.admin("add_model", {"model_name": app, "model_version": "1",
                                 "input_type": input_type, "batch_size": batch_size,
                                 "num_replicas": replicas, **model_settings})  # fmt: skip
        self.admin("add_model_links", {"app_name": app, "model_names": [app]})
        self.admin("wait_model_ready", {"model_name": app, "model_version": "1"})


@contextlib.contextmanager
def bench_server(extra_env: dict[str, str] | None = None) -> Iterator[BenchServer]:
    """A server on free ports in a temporary state directory, stopped afterwards."""
    with launched_server(extra_env) as server:
        _wait_ready(server)
        yield server


@contextlib.contextmanager
def launched_server(
    extra_env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[BenchServer]:
    """Like `bench_server`, but yields as soon as the process is launched (not yet ready).

    `cwd` is the working directory of `python -m clipper.cli` (its first import path).
    """
    with tempfile.TemporaryDirectory(prefix="clipper-bench-") as state_dir:
        query_port, admin_port = _free_port(), _free_port()
        command = [
            sys.executable, "-m", "clipper.cli", "start", "--cluster-name", "bench",
            "--state-dir", state_dir, "--query-port", str(query_port),
            "--admin-port", str(admin_port), "--rpc-port", str(_free_port()),
        ]  # fmt: skip
        log = open(Path(state_dir) / "bench-server.out", "wb")  # noqa: SIM115
        # One query frontend unless asked (comparable across machines; benchmarks.frontends
        # sets CLIPPER_FRONTENDS itself).
        env = {"CLIPPER_FRONTENDS": "1", **os.environ, **(extra_env or {})}
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        try:
            yield BenchServer(process, query_port, admin_port, Path(state_dir))
        finally:
            stop_process(process, signal.SIGTERM, 20)
            log.close()


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """`revision` checked out in a temporary git worktree, removed afterwards (for
    benchmarks that compare this tree with another revision side by side)."""
    with tempfile.TemporaryDirectory(prefix="clipper-bench-tree-") as parent:
        path = Path(parent) / "tree"
        git = ["git", "-C", str(REPO_ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", str(path), revision], check=True,
                       capture_output=True)  # fmt: skip
        try:
            yield path
        finally:
            subprocess.run([*git, "remove", "--force", str(path)], check=True)


def stop_process(process: subprocess.Popen[Any], sig: int, grace_s: float) -> None:
    """Signal a process this benchmark started; SIGKILL it if it outlives `grace_s`."""
    process.send_signal(sig)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace_s)


def _wait_ready(server: BenchServer, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        with contextlib.suppress(httpx.HTTPError):
            url = f"http://127.0.0.1:{server.query_port}/readyz"
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError("the server did not become ready")
