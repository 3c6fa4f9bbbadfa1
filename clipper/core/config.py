"""Settings: the only module that reads the environment (prefix `CLIPPER_`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from clipper.core.gpu_devices import parse_gpu_setting
from clipper.core.resources import DefaultMemoryLimit

__all__ = [
    "CONFIG_FILE_ENV",
    "Settings",
    "default_frontends",
    "default_state_dir",
    "environment_config_file",
    "fields_in_environment",
]

CONFIG_FILE_ENV = "CLIPPER_CONFIG"
"""The variable naming a TOML config file of settings (see clipper.core.config_file)."""

_COMMA_SEPARATED = frozenset({"cors_allowed_origins"})
"""List fields the environment gives comma-separated (`NoDecode` with a splitting validator)."""


def default_state_dir(cluster_name: str) -> Path:
    """`~/.clipper/<cluster>`: where a cluster keeps its registry, artifacts and logs."""
    return Path.home() / ".clipper" / cluster_name


def default_frontends(cores: int | None = None) -> int:
    """The default number of query frontends for a machine of `cores` (this one's usable
    cores when None): 1 up to 2 cores (a second frontend only takes CPU from the workers
    and measures slower there), else one per 4 cores, at most 8: each frontend busies
    about one core at its peak, and the rest is left to the workers and the kernel."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return 1 if cores <= 2 else max(1, min(8, cores // 4))


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
    frontends: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Query-frontend processes sharing the query and gRPC ports (SO_REUSEPORT) "
        "and every replica, beside one control process (admin API, dashboard, reconciler); "
        "1 keeps the single-process server. Default (None): 1 on a machine of up to 2 cores, "
        "else one per 4 cores, at most 8 (see `default_frontends`); 1 with placement=ray.",
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
    worker_spin_us: int = Field(
        300, ge=0, le=100_000,
        description="While batches come close together, how long a worker polls its "
        "connection for the next one before it sleeps (0: never): the next batch is then "
        "picked up without a wake-up, for lower latency at the cost of some CPU.",
    )  # fmt: skip
    server_spin_us: int = Field(
        300, ge=0, le=100_000,
        description="While reads come close together (queries, workers' replies), how long "
        "the server's event loop keeps polling after each before it sleeps (0: never): "
        "the next one is then handled without a wake-up, at the cost of some CPU.",
    )  # fmt: skip
    worker_threads: int = Field(
        0, ge=0, le=1024,
        description="Threads each local replica's numeric libraries (PyTorch, NumPy, "
        "scikit-learn: OMP_NUM_THREADS and the like) may run; 0: the CPUs the replica takes "
        "(its `num_cpus`, else `cpu_share`, else 1), rounded up. A thread variable set in "
        "the server's environment is passed on as it is.",
    )  # fmt: skip
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
    payload_log_max_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="An app's JSONL payload log (<state_dir>/payloads/<app>.jsonl) rotates "
        "past this size.",
    )
    payload_log_backups: int = Field(
        3, ge=0, description="Rotated copies kept of each JSONL payload log (<app>.jsonl.1, ...)."
    )
    payload_log_buffer: int = Field(
        10_000,
        gt=0,
        description="Payload records an app may have waiting for its sink; past that, new "
        "ones are dropped and counted (clipper_payload_log_dropped_total), never waited for.",
    )
    payload_log_timeout_s: float = Field(
        5.0,
        gt=0,
        description="The longest one write to a payload sink may take; the records of a write "
        "that takes longer are dropped and counted (reason sink_timeout).",
    )
    otel_endpoint: str | None = Field(
        None,
        description="Where traces of sampled queries go: an OTLP collector's base URL "
        "(http://host:4318; spans are posted to /v1/traces over HTTP/protobuf), or host:port "
        "with otel_protocol 'grpc'. Unset: tracing is off and OpenTelemetry is not imported.",
    )
    otel_protocol: Literal["http/protobuf", "grpc"] = Field(
        "http/protobuf",
        description="OTLP transport of otel_endpoint; 'grpc' needs the "
        "opentelemetry-exporter-otlp-proto-grpc package.",
    )
    otel_sample_ratio: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Share of queries without a sampled caller's traceparent that are traced "
        "(0..1; default 0.01 with an endpoint). A traceparent's sampled flag decides for its "
        "query.",
    )
    otel_service_name: str = Field(
        "clipper",
        description="service.name of the traces' resource (the cluster's name is clipper.cluster).",
    )
    otel_export_delay_s: float = Field(
        2.0,
        gt=0,
        description="How long finished spans may wait in the background exporter's buffer "
        "before they are sent (OpenTelemetry's BatchSpanProcessor schedule delay).",
    )
    dashboard_sample_interval_s: float = Field(
        3.0,
        gt=0,
        description="How often the server adds a metrics summary to the dashboard's history "
        "(`GET /admin/metrics_history`), so its charts are full when the page opens.",
    )
    rollout_interval_s: float = Field(
        0.25,
        gt=0,
        le=10,
        description="How often each running canary rollout is judged on its live traffic "
        "(README.md#canary-rollouts): a failed check rolls it back within this time.",
    )
    autoscaler_interval_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often the autoscaler observes each autoscaled model version and "
        "decides its replica count (README.md#autoscaling).",
    )
    dashboard_history_s: float = Field(
        600.0,
        ge=0,
        description="How far back the dashboard's history reaches, in seconds (at most 1000 "
        "samples are kept: a short interval keeps a shorter span).",
    )
    replica_memory_limit: str = Field(
        "50%",
        description="Memory limit of each replica whose model version sets no "
        "`memory_limit`: a share of the memory of the machine the replica runs on (the "
        "lower of its RAM and its cgroup's limit), an amount (`4GiB`, `512MB`, bytes), or "
        "`off`. Past it the replica is stopped and reported 'memory limit exceeded' (a "
        "cgroup where the worker may make one, else a watch of its resident memory).",
    )

    @field_validator("replica_memory_limit")
    @classmethod
    def _check_memory_limit(cls, value: str) -> str:
        return str(DefaultMemoryLimit.parse(value))  # ValueError: a clear settings error

    gpus: str | None = Field(
        None,
        description="The GPUs the local placement shares out, as fake devices for tests: a "
        'count (`2`) or a JSON list (`[{"name": "fake-a100", "memory": 40000000000}]`); '
        "unset: the GPUs NVML finds (clipper[gpu]), else none (README.md#gpus).",
    )

    @field_validator("gpus")
    @classmethod
    def _check_gpus(cls, value: str | None) -> str | None:
        if value is not None:
            parse_gpu_setting(value)  # ValueError: a clear settings error
        return value

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

    # -- browsers (issue 10): CORS on the query API --------------------------------------
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins whose web pages may call the query API (CORS), comma-separated "
        "in the environment, e.g. 'http://localhost:8000'; '*' allows any; empty: CORS off.",
    )

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    # -- security (issue 11): admin and query tokens, TLS ---------------------------------
    admin_auth: bool = Field(
        True,
        description="Require the admin token (`Authorization: Bearer`, from "
        "<state_dir>/admin_token, created at first start) on the admin API.",
    )
    allow_insecure_bind: bool = Field(
        False,
        description="Allow binding a non-loopback `host` with admin_auth off (refused "
        "otherwise: anyone who reaches the port could manage the cluster).",
    )
    admin_token: SecretStr | None = Field(
        None,
        description="For clients (Python, CLI): the admin token to send; default: the one in "
        "<state_dir>/admin_token. The server always checks the file.",
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate (chain) of the query and admin APIs: HTTPS when set."
    )
    tls_key_file: Path | None = Field(
        None, description="PEM private key of tls_cert_file (needed with it)."
    )
    tls_ca_file: Path | None = Field(
        None,
        description="For clients: CA bundle to verify the server with; default: "
        "tls_cert_file when set (a self-signed certificate), else the system's CAs.",
    )

    # -- hardening (issue 11): input and connection limits of the query API -------------
    max_batch_inputs: int = Field(
        4096,
        gt=0,
        description="Most inputs in one request: `input_batch` items, or V2 tensors and batch "
        "rows (413 above).",
    )
    max_string_bytes: int = Field(
        4 * 1024 * 1024, gt=0, description="Largest string or bytes input, in bytes (413)."
    )
    max_tensor_elements: int = Field(
        16 * 1024 * 1024,
        gt=0,
        description="Most elements in one numeric input or V2 tensor, checked against its "
        "declared shape before any data is read (413).",
    )
    max_json_depth: int = Field(
        32, gt=0, description="Deepest JSON nesting accepted in a request body (400)."
    )
    max_header_bytes: int = Field(
        16 * 1024, gt=0, description="Largest request line plus headers, in bytes (431)."
    )
    max_headers: int = Field(100, gt=0, description="Most header fields in a request (431).")
    max_connections: int = Field(
        2048,
        gt=0,
        description="Most open connections to the query port, at most what the open-files "
        "limit allows (see clipper.core.open_files); when full, a new connection closes the "
        "longest-idle one, or is answered 503 and closed when none is idle.",
    )
    max_connections_per_client: int | None = Field(
        None,
        gt=0,
        description="Most connections from one client address to the query port or the "
        "admin port (503 past it); unset: half of the port's cap.",
    )
    admin_max_connections: int = Field(
        256, gt=0, description="Most open connections to the admin port (as max_connections)."
    )
    grpc_max_connections: int = Field(
        1024, gt=0, description="Most open connections to the gRPC port (refused past it)."
    )
    max_buffered_body_bytes: int | None = Field(
        None,
        gt=0,
        description="Most bytes of request bodies the query port buffers at once (bodies of "
        "256 KiB and more, and chunked ones); a new large body past it is answered 503 "
        "`ServerBusy`. Unset: an eighth of the machine's memory, at least 64 MiB.",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Time a client has to send a request's line and headers, from its first "
        "byte or from connecting (408, then the connection closes).",
    )
    body_timeout_s: float = Field(
        60.0, gt=0, description="Time a client has to send a request's body (408)."
    )
    keep_alive_timeout_s: float = Field(
        30.0, gt=0, description="An idle keep-alive connection is closed after this long."
    )

    def to_env(self) -> dict[str, str]:
        """Every setting as the `CLIPPER_<FIELD>` text this class reads back to the same
        value (the launcher hands a detached server its settings this way): lists that the
        environment gives comma-separated joined so, other lists and dicts as JSON, booleans
        as true/false, secrets revealed; a field that is None is left out (its default)."""
        env = {}
        for name in type(self).model_fields:
            text = _env_text(name, getattr(self, name))
            if text is not None:
                env[f"CLIPPER_{name.upper()}"] = text
        return env

    def resolved_state_dir(self) -> Path:
        """The state directory, defaulting to ~/.clipper/<cluster_name>."""
        if self.state_dir is not None:
            return self.state_dir
        return default_state_dir(self.cluster_name)

    def resolved_frontends(self) -> int:
        """How many query frontends to run: `frontends`, else `default_frontends()` for the
        local placement and 1 for Ray's (several frontends need local replicas)."""
        if self.frontends is not None:
            return self.frontends
        return default_frontends() if self.placement == "local" else 1

    def resolved_env_cache_dir(self) -> Path:
        """The model-environment cache, defaulting to <state_dir>/envs."""
        if self.env_cache_dir is not None:
            return self.env_cache_dir
        return self.resolved_state_dir() / "envs"


def environment_config_file() -> Path | None:
    """The config file `CLIPPER_CONFIG` names, or None when it is unset or empty."""
    value = os.environ.get(CONFIG_FILE_ENV, "")
    return Path(value) if value else None


def fields_in_environment() -> set[str]:
    """The Settings fields a `CLIPPER_<FIELD>` variable sets (names read case-insensitively,
    as `Settings` reads them)."""
    names = {key.upper() for key in os.environ}
    return {field for field in Settings.model_fields if f"CLIPPER_{field.upper()}" in names}


def _env_text(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)) and name in _COMMA_SEPARATED:
        return ",".join(str(item) for item in value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)
