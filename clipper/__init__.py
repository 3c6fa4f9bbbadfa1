"""Clipper: a low-latency, general-purpose prediction-serving system.

The package is built in layers; a module imports only modules of its own layer or of the
layers below it (checked in CI by `lint-imports`, contracts in pyproject.toml; the layers
with `|` between them do not import each other either). From the top:

    cli                                  the `clipper` command and the detached launcher
    server                               one server: every port, the lifecycle of its parts
    demo                                 the hello-world model `clipper start --demo` serves
    client                               the HTTP client of the admin and query APIs
    admin                                the admin API, its OpenAPI, the dashboard, tokens
    control                              the registry (store, SQL), the service, the reconciler
    placement                            where replicas run: local processes or Ray actors
    worker                               the model-container process
    artifacts                            the artifact format and one module per model kind
    environments                         a model version's Python environment
    frontend                             Clipper's REST API and the Open Inference Protocol
    security                             bearer tokens and TLS of the HTTP APIs
    http                                 HTTP/1.1 server, uvicorn host, CORS, the error table
    dataplane                            the query path: routes, batching, deadlines, cache
    rpc | batching | selection | metrics the worker RPC, batch sizing, policies, metrics
    core                                 types, exceptions, records, settings, input codec

`docs/architecture.md` says what each layer holds. `clipper_admin` (Clipper's own admin
package, kept compatible) sits above all of them and nothing here imports it. Modules
whose names start with `_` are internal to their package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clipper.core.exceptions import ClipperError
from clipper.core.types import InputType, ModelId, ReplicaId

if TYPE_CHECKING:
    from clipper.core.config import Settings

__all__ = ["ClipperError", "InputType", "ModelId", "ReplicaId", "Settings", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Settings (pydantic) is imported on first use: a worker process imports `clipper`
    # but needs only its worker packages (see clipper.environments.manager.WORKER_PACKAGES).
    if name == "Settings":
        from clipper.core.config import Settings

        return Settings
    raise AttributeError(f"module 'clipper' has no attribute {name!r}")
