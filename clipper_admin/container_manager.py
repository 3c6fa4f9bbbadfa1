"""Container managers: who runs a cluster's server (and through it, its model replicas).

Clipper had Docker and Kubernetes managers; `LocalContainerManager` runs the server as a
local background process whose replicas are worker processes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from clipper.cli import launcher
from clipper.core.config import Settings
from clipper.security import ensure_admin_token

__all__ = ["ContainerManager", "LocalContainerManager"]


class ContainerManager(Protocol):
    """What `ClipperConnection` needs from a container manager."""

    @property
    def settings(self) -> Settings:
        """The settings of the managed cluster (addresses, ports, state directory)."""
        ...

    def start_clipper(self, timeout_s: float = 30.0) -> None:
        """Start the cluster; return once its query and admin APIs answer."""
        ...

    def stop_all(self, graceful: bool = True) -> None:
        """Stop the cluster's server and every replica."""
        ...

    def get_query_addr(self) -> str:
        """`"host:port"` of the query API."""
        ...

    def get_admin_addr(self) -> str:
        """`"host:port"` of the admin API."""
        ...

    def get_metric_addr(self) -> str:
        """`"host:port"` serving `/metrics`."""
        ...


class LocalContainerManager:
    """Runs a cluster's server as a background process on this machine."""

    def __init__(
        self,
        cluster_name: str = "default-cluster",
        clipper_query_port: int = 1337,
        clipper_management_port: int = 1338,
        clipper_rpc_port: int = 7000,
        state_dir: str | Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        values: dict[str, Any] = {
            "cluster_name": cluster_name,
            "host": host,
            "query_port": clipper_query_port,
            "admin_port": clipper_management_port,
            "rpc_port": clipper_rpc_port,
        }
        if state_dir is not None:
            values["state_dir"] = Path(state_dir)
        self._settings = Settings(**values)
        self.pid: int | None = None
        """Pid of the server this manager started, if it started one."""

    @property
    def settings(self) -> Settings:
        """The settings the server is started with."""
        return self._settings

    def start_clipper(self, timeout_s: float = 30.0) -> None:
        """Start the server; return once `/admin/ping` and the query API's `/healthz` answer.

        The admin token is created here, before the server starts, so that it never appears
        in the server's log; ClipperConnection reads it from the state directory.
        """
        deadline = time.monotonic() + timeout_s
        if self._settings.admin_auth:
            ensure_admin_token(self._settings.resolved_state_dir())
        self.pid = launcher.start_server_process(self._settings, timeout_s=timeout_s)
        launcher.wait_query_ready(self._settings, max(deadline - time.monotonic(), 1.0))

    def stop_all(self, graceful: bool = True) -> None:
        """Shut the server down (it stops its replicas); SIGKILL it if it lingers."""
        launcher.stop_server(self._settings, timeout_s=30.0 if graceful else 5.0)
        self.pid = None

    def get_query_addr(self) -> str:
        """`"host:port"` of the query API."""
        return f"{self._settings.host}:{self._settings.query_port}"

    def get_admin_addr(self) -> str:
        """`"host:port"` of the admin API."""
        return f"{self._settings.host}:{self._settings.admin_port}"

    def get_metric_addr(self) -> str:
        """`"host:port"` serving Prometheus metrics at `/metrics` (the query API)."""
        return self.get_query_addr()
