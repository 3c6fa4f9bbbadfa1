"""`RayContainerManager`: a cluster whose replicas are Ray actors across a Ray cluster's nodes.

The server still runs as a local background process (like `LocalContainerManager`); it
connects to the Ray cluster and places each replica there, with the resources its model
version asks for (`resources={...}` at deploy time). Nothing here imports Ray: the server
does, so `pip install 'clipper-serving[ray]'` is needed where the server runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clipper.core.config import Settings
from clipper_admin.container_manager import LocalContainerManager

__all__ = ["RayContainerManager"]


class RayContainerManager(LocalContainerManager):
    """Runs a cluster's server on this machine and its replicas on a Ray cluster.

    `address` is Ray's: None (RAY_ADDRESS or the cluster running on this machine, else a
    new local one), "auto", "host:port" of the head's GCS, "ray://host:port" (Ray Client)
    or "local" (a private local Ray instance). Workers on other machines dial the server's
    RPC listener: bind it where they reach it (`rpc_host`, e.g. "0.0.0.0") and, if that is
    not the address they should dial, set `rpc_advertise_host`.
    """

    def __init__(
        self,
        address: str | None = None,
        cluster_name: str = "default-cluster",
        clipper_query_port: int = 1337,
        clipper_management_port: int = 1338,
        clipper_rpc_port: int = 7000,
        state_dir: str | Path | None = None,
        host: str = "127.0.0.1",
        rpc_host: str = "127.0.0.1",
        rpc_advertise_host: str | None = None,
    ) -> None:
        super().__init__(
            cluster_name,
            clipper_query_port,
            clipper_management_port,
            clipper_rpc_port,
            state_dir,
            host,
        )
        ray_values: dict[str, Any] = {
            "placement": "ray",
            "ray_address": address,
            "rpc_host": rpc_host,
            "rpc_advertise_host": rpc_advertise_host,
        }
        self._settings = Settings(**{**self._settings.model_dump(), **ray_values})
