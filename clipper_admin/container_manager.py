"""Container managers: who runs a cluster's server (and through it, its model replicas).

Clipper had Docker and Kubernetes managers; `LocalContainerManager` runs the server as a
local background process whose replicas are worker processes.
"""

from __future__ import annotations

import os
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
    """Runs a cluster's server as a background process on this machine.

    Each address and port is the argument when one is given, else its `CLIPPER_<SETTING>`
    environment variable, else the default: the rule of the CLI and the server."""

    def __init__(
        self,
        cluster_name: str | None = None,
        clipper_query_port: int | None = None,
        clipper_management_port: int | None = None,
        clipper_rpc_port: int | None = None,
        state_dir: str | Path | None = None,
        host: str | None = None,
        clipper_grpc_port: int | None = None,
    ) -> None:
        given: dict[str, Any] = {
            "cluster_name": cluster_name,
            "host": host,
            "query_port": clipper_query_port,
            "admin_port": clipper_management_port,
            "rpc_port": clipper_rpc_port,
            "grpc_port": clipper_grpc_port,
            "state_dir": Path(state_dir) if state_dir is not None else None,
        }
        values = {name: value for name, value in given.items() if value is not None}
        self._settings = Settings(**values)
        self._given = frozenset(values)
        self.pid: int | None = None
        """Pid of the server this manager started, if it started one."""

    def origin_of(self, setting: str) -> str:
        """Where a setting's value came from: an argument, the environment or the default."""
        if setting in self._given:
            return "an argument of LocalContainerManager"
        variable = f"CLIPPER_{setting.upper()}"
        if variable in os.environ:
            return f"${variable}"
        return "the default"

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
