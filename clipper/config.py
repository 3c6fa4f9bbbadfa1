"""Settings: the only module that reads the environment (prefix `CLIPPER_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_state_dir"]


def default_state_dir(cluster_name: str) -> Path:
    """`~/.clipper/<cluster>`: where a cluster keeps its registry, artifacts and logs."""
    return Path.home() / ".clipper" / cluster_name


class Settings(BaseSettings):
    """Server settings. Every field can be set as `CLIPPER_<FIELD>` or by a CLI flag."""

    model_config = SettingsConfigDict(env_prefix="CLIPPER_", extra="ignore")

    cluster_name: str = Field("default-cluster", description="Name of this cluster.")
    host: str = Field("127.0.0.1", description="Address the query and admin APIs bind to.")
    query_port: int = Field(1337, description="Port of the query API.")
    admin_port: int = Field(1338, description="Port of the admin API.")
    rpc_host: str = Field("127.0.0.1", description="Address the worker RPC listener binds to.")
    rpc_port: int = Field(7000, description="Port of the worker RPC listener.")
    rpc_advertise_host: str | None = Field(
        None,
        description="Address workers dial to reach the RPC listener; default: rpc_host, or "
        "with the Ray placement and a wildcard rpc_host (0.0.0.0), this machine's Ray node "
        "address. Workers on other machines need an address they can reach.",
    )
    grpc_port: int = Field(
        8001,
        description="Port of the Open Inference Protocol's gRPC API (on `host`); if it "
        "cannot be bound the server logs an error and serves REST only.",
    )
    state_dir: Path | None = Field(
        None, description="Registry, artifacts and logs; default ~/.clipper/<cluster_name>."
    )
    query_http: str = Field(
        "clipper",
        description="HTTP server of the query API: 'clipper' (lean HTTP/1.1 on httptools) "
        "or 'uvicorn'.",
    )
    malloc_keep_bytes: int = Field(
        256 * 1024 * 1024,
        description="Freed memory the server keeps for reuse instead of returning it to the "
        "OS (glibc; 0: the allocator's default): large tensors then reuse warm pages.",
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, description="Largest request body accepted (413 above)."
    )
    cache_bytes: int = Field(
        32 * 1024 * 1024, description="Bound of the prediction cache, in bytes."
    )
    heartbeat_interval_s: float = Field(1.0, description="How often workers send heartbeats.")
    heartbeat_timeout_s: float = Field(
        10.0, description="A worker silent for this long is considered hung and replaced."
    )
    restart_backoff_initial_s: float = Field(0.5, description="First restart delay of a replica.")
    restart_backoff_max_s: float = Field(30.0, description="Cap of the restart delay.")
    worker_python: str | None = Field(
        None, description="Interpreter for workers; default: the server's own."
    )
    placement: Literal["local", "ray"] = Field(
        "local",
        description="Where replicas run: 'local' (worker processes on this machine) or 'ray' "
        "(a Ray actor per replica, placed on the nodes of a Ray cluster; needs clipper[ray]).",
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster of the 'ray' placement: 'auto' (the one running on this "
        "machine), 'host:port' (its GCS), 'ray://host:port' (Ray Client) or 'local' (start a "
        "private one); default: RAY_ADDRESS or the one on this machine, else start one.",
    )
    log_max_bytes: int = Field(
        10 * 1024 * 1024, description="Log files (server and workers) rotate past this size."
    )
    log_backups: int = Field(3, description="Rotated copies kept of each log file.")
    log_level: str = Field("INFO", description="Server log level.")
    env_cache_dir: Path | None = Field(
        None,
        description="Where virtual environments built for models are cached; default "
        "<state_dir>/envs. Point several clusters at one directory to share builds.",
    )
    env_installer: str = Field(
        "auto",
        description="Installer of model environments: 'auto' (uv if on PATH, else "
        "venv + pip), 'uv' or 'pip'.",
    )
    env_build_timeout_s: float = Field(
        900.0, description="A model environment whose build takes longer fails the deploy."
    )

    def resolved_state_dir(self) -> Path:
        """The state directory, defaulting to ~/.clipper/<cluster_name>."""
        if self.state_dir is not None:
            return self.state_dir
        return default_state_dir(self.cluster_name)

    def resolved_env_cache_dir(self) -> Path:
        """The model-environment cache, defaulting to <state_dir>/envs."""
        if self.env_cache_dir is not None:
            return self.env_cache_dir
        return self.resolved_state_dir() / "envs"
