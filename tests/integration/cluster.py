"""Starting and stopping real Clipper servers for integration tests."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx

from clipper.client import AdminClient
from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError
from clipper.security import read_admin_token
from clipper.security.tls import client_context
from tests.integration.certificates import self_signed_certificate

STARTUP_TIMEOUT_S = 30.0


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port nobody listens on right now, and never one this process handed out
    before: the kernel may offer a just-released port again, and a server given the same
    port twice (say as admin and RPC port) fails to start."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no fresh free port after 100 tries")


def wait_until(condition: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Poll `condition()` until it returns something truthy, bounded by `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def rss_bytes(pid: int) -> int:
    """The resident memory of process `pid`."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


@dataclass
class ServerHandle:
    """A server process started by a test, with its addresses."""

    state_dir: Path
    cluster_name: str
    query_port: int
    admin_port: int
    rpc_port: int
    process: subprocess.Popen[bytes] | None = None
    worker_pids: set[int] = field(default_factory=set)
    grpc_port: int = field(default_factory=free_port)
    ca_file: Path | None = None
    """The CA (or self-signed certificate) of a server that serves TLS; None: plain HTTP."""
    env: dict[str, str] = field(default_factory=dict)
    """Added to the server's environment (its settings, e.g. `CLIPPER_MAX_BODY_BYTES`)."""
    open_files: int | None = None
    """The server's `RLIMIT_NOFILE` (soft and hard) when set: a machine with a low limit."""

    @property
    def scheme(self) -> str:
        return "http" if self.ca_file is None else "https"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx verifies the server with."""
        return True if self.ca_file is None else client_context(self.ca_file)

    @property
    def query_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.query_port}"

    @property
    def admin_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.admin_port}"

    @property
    def log_path(self) -> Path:
        """Where the server's stdout and stderr go (appended to across restarts)."""
        return self.state_dir.parent / f"{self.cluster_name}-server.out"

    @cached_property
    def admin(self) -> AdminClient:
        """The product's admin client, bound to this server: its token re-read from the
        state directory before each request, https when the server serves TLS."""
        return AdminClient(
            "127.0.0.1", self.admin_port, timeout_s=60, keep_alive=False,
            token=lambda: read_admin_token(self.state_dir), https=self.ca_file is not None,
            verify=self.verify,
        )  # fmt: skip

    def admin_http(self, operation: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """`POST /admin/<operation>` as raw HTTP, with the admin token: for tests that check
        the admin API's statuses and bodies themselves, and for the operations `AdminClient`
        has no method for (query tokens). Everything else: `admin`."""
        return httpx.post(
            f"{self.admin_url}/admin/{operation}",
            json=body or {},
            headers=self.admin_headers(),
            timeout=60,
            verify=self.verify,
        )

    def admin_headers(self) -> dict[str, str]:
        """The admin token header, read from the state directory (as every client does)."""
        token = read_admin_token(self.state_dir)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def cli_flags(self) -> list[str]:
        return [
            "--cluster-name", self.cluster_name,
            "--state-dir", str(self.state_dir),
            "--query-port", str(self.query_port),
            "--admin-port", str(self.admin_port),
            "--rpc-port", str(self.rpc_port),
            "--grpc-port", str(self.grpc_port),
        ]  # fmt: skip

    def start(self) -> None:
        """Start `clipper start` in the foreground of a child process; wait until ready."""
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clipper.cli", "start", *self.cli_flags()],
            stdout=log,
            stderr=subprocess.STDOUT,
            # One query frontend unless the test or the environment asks for more (the
            # default depends on the machine's cores: see Settings.frontends).
            env={"CLIPPER_FRONTENDS": "1", **os.environ, **self.env},
            preexec_fn=None if self.open_files is None else self._limit_open_files,
        )
        log.close()
        wait_until(self._ready, STARTUP_TIMEOUT_S, "the server to be ready")

    def _limit_open_files(self) -> None:
        """In the server's process, before it starts."""
        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"server exited with {self.process.returncode}; its output:\n{tail}")
        try:
            response = httpx.get(f"{self.query_url}/readyz", timeout=1, verify=self.verify)
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    def predict(self, app: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("verify", self.verify)
        return httpx.post(f"{self.query_url}/{app}/predict", json=body, timeout=30, **kwargs)

    def replica_pids(self) -> list[int]:
        """Pids of this server's workers, remembered for cleanup."""
        replicas = self.admin.get_all_containers(verbose=True)
        pids = [replica["pid"] for replica in replicas if replica["pid"]]
        self.worker_pids.update(pids)
        return pids

    def kill(self) -> None:
        """SIGKILL the server (workers notice and exit by themselves). With several query
        frontends, which outlive their control process, those too: the whole server is
        gone (its workers, then alone, exit within `ORPHAN_TIMEOUT_S`, or the next
        server on the state directory adopts them)."""
        assert self.process is not None
        frontends: list[int] = []
        with contextlib.suppress(ClipperError):
            self.replica_pids()
            frontends = [row["pid"] for row in self.admin.status().get("frontends", [])]
        self.process.kill()
        self.process.wait(10)
        kill_leftovers(frontends)

    def stop(self) -> None:
        """SIGTERM the server, then make sure every worker it started is gone."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ClipperError):
                self.replica_pids()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for pid in self.worker_pids:
            with contextlib.suppress(TimeoutError):
                wait_until(lambda pid=pid: not pid_alive(pid), 10, f"worker {pid} to exit")
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def deploy(
    server: ServerHandle,
    app: str,
    func: Any,
    *,
    input_type: str = "doubles",
    slo_us: int = 1_000_000,
    replicas: int = 1,
    link: bool = True,
    version: str = "1",
    **model_settings: Any,
) -> None:
    """Register `app` (if new), deploy `func` as model `app` at `version`, link, wait ready."""
    from clipper.artifacts.python import closure_artifact

    admin = server.admin
    if admin.get_application(app) is None:
        admin.add_app(app, input_type, default_output="-1", latency_slo_micros=slo_us)
    admin.upload_artifact(app, version, closure_artifact(func))
    admin.add_model(app, version, input_type, num_replicas=replicas, **model_settings)
    if link:
        admin.add_model_links(app, [app])
    admin.wait_model_ready(app, version)


def metric(server: ServerHandle, name: str, **labels: str) -> float:
    """The value of one sample on the server's /metrics page (0 when absent)."""
    text = httpx.get(f"{server.query_url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        sample_name = head.split("{")[0]
        if sample_name != name:
            continue
        if all(f'{key}="{val}"' in head for key, val in labels.items()):
            return float(value)
    return 0.0


# -- the fixture factory (configured_server, module_server) and process helpers ----------


def settings_env(**settings: object) -> dict[str, str]:
    """`CLIPPER_<FIELD>` variables for Settings fields (a field that does not exist is an
    error): lists comma-separated (as `CLIPPER_CORS_ALLOWED_ORIGINS` is read), dicts as JSON,
    booleans as true/false, the rest as text."""
    unknown = sorted(set(settings) - set(Settings.model_fields))
    if unknown:
        raise TypeError(f"not fields of Settings: {', '.join(unknown)}")
    return {f"CLIPPER_{name.upper()}": _env_text(value) for name, value in settings.items()}


def _env_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


class ServerFactory:
    """Starts servers configured by `Settings` fields under `directory` and stops them all
    (the `configured_server` and `module_server` fixtures)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._started: list[ServerHandle] = []

    def __call__(
        self,
        name: str = "test",
        *,
        tls: bool = False,
        open_files: int | None = None,
        **settings: object,
    ) -> ServerHandle:
        """A server named `name` with these settings, on free ports, ready. With `tls` it
        serves https with a self-signed certificate made for it (its `ca_file`);
        `open_files` lowers its open-files limit (see `ServerHandle.open_files`)."""
        env = settings_env(**settings)
        server_dir = self._directory / name
        server_dir.mkdir(parents=True, exist_ok=True)
        ca_file = None
        if tls:
            ca_file, key_file = self_signed_certificate(server_dir)
            env.update(settings_env(tls_cert_file=ca_file, tls_key_file=key_file))
        handle = ServerHandle(
            state_dir=server_dir / "state",
            cluster_name=name,
            query_port=free_port(),
            admin_port=free_port(),
            rpc_port=free_port(),
            ca_file=ca_file,
            env=env,
            open_files=open_files,
        )
        return self._start(handle)

    def restart(self, handle: ServerHandle) -> ServerHandle:
        """Stop `handle` if it still runs (it may have been killed), then start a new server
        with its name, settings and state directory on fresh ports, as after a reboot."""
        handle.stop()
        again = dataclasses.replace(
            handle,
            query_port=free_port(),
            admin_port=free_port(),
            rpc_port=free_port(),
            grpc_port=free_port(),
            process=None,
            worker_pids=set(),
        )
        return self._start(again)

    def _start(self, handle: ServerHandle) -> ServerHandle:
        self._started.append(handle)
        handle.start()
        return handle

    def stop_all(self) -> None:
        """Stop every server started, the newest first."""
        for handle in reversed(self._started):
            handle.stop()


def wait_pids_exit(pids: Any, timeout_s: float, what: str) -> None:
    """Wait (bounded) until every pid in `pids` has exited."""
    for pid in pids:
        wait_until(lambda pid=pid: not pid_alive(pid), timeout_s, f"{what} (pid {pid}) to exit")


def kill_leftovers(pids: Any) -> None:
    """SIGKILL whichever of `pids` (processes a test started) still run."""
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
