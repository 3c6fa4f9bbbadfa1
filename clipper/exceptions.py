"""The one exception tree of Clipper.

    ClipperError
    ├── QueryError                  a query that cannot be answered as asked
    │   ├── InvalidInput            bad JSON, missing keys, wrong element types
    │   ├── UnknownApplication
    │   ├── UnknownVersion          the query named a version that does not exist
    │   └── PayloadTooLarge
    ├── DeadlineExceeded            the query's deadline passed before a model answered
    ├── ReplicaError                what went wrong on the model side (become default answers)
    │   ├── ReplicaUnavailable      no replica connected
    │   ├── ReplicaCrashed          the worker died with the batch in flight
    │   └── ModelError              the model raised, or returned the wrong number of outputs
    ├── ManagementError             refused admin operations
    │   ├── InvalidName
    │   ├── InvalidInputType
    │   ├── InvalidRequest          a malformed admin request
    │   ├── NotFound
    │   │   ├── ApplicationNotFound
    │   │   ├── ModelNotFound
    │   │   └── ReplicaNotFound
    │   ├── AlreadyExists
    │   ├── Conflict                valid but not allowed in the current state
    │   └── DeployFailed            replicas did not become ready
    │       └── EnvironmentBuildFailed  the model's virtual environment could not be built
    ├── RpcError                    malformed frames or protocol mismatch on the worker RPC
    └── AuthError                   a request without the credentials it needs
        ├── Unauthorized            no bearer token, or not a valid one
        └── Forbidden               a valid token not scoped to what was asked

Domain errors carry no HTTP status: `clipper.frontend.errors` holds the one map from
exception to status and JSON body.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ApplicationNotFound",
    "AuthError",
    "ClipperError",
    "Conflict",
    "DeadlineExceeded",
    "DeployFailed",
    "EnvironmentBuildFailed",
    "Forbidden",
    "InvalidInput",
    "InvalidInputType",
    "InvalidName",
    "InvalidRequest",
    "ManagementError",
    "ModelError",
    "ModelNotFound",
    "NotFound",
    "PayloadTooLarge",
    "QueryError",
    "ReplicaCrashed",
    "ReplicaError",
    "ReplicaNotFound",
    "ReplicaUnavailable",
    "RpcError",
    "Unauthorized",
    "UnknownApplication",
    "UnknownVersion",
]


class ClipperError(Exception):
    """Base of every error Clipper raises on purpose."""


class QueryError(ClipperError):
    """A query that cannot be answered as asked."""


class InvalidInput(QueryError):
    """Malformed JSON, missing keys or elements of the wrong type."""


class UnknownApplication(QueryError):
    """The query named an application that is not registered."""


class UnknownVersion(QueryError):
    """The query asked for a model version that does not exist."""


class PayloadTooLarge(QueryError):
    """The request body exceeds the configured limit."""


class DeadlineExceeded(ClipperError):
    """The deadline passed before a model answered (the query was dropped or is late)."""


class ReplicaError(ClipperError):
    """The model side failed; the query is answered with the app's default output."""


class ReplicaUnavailable(ReplicaError):
    """No replica of the model version is connected."""


class ReplicaCrashed(ReplicaError):
    """The worker process died while it held the batch."""


class ModelError(ReplicaError):
    """The model raised, or returned a wrong number of outputs."""


class ManagementError(ClipperError):
    """An admin operation was refused."""


class InvalidName(ManagementError):
    """A name or version does not match Clipper's pattern."""


class InvalidInputType(ManagementError):
    """An input type that is not one of Clipper's five."""


class InvalidRequest(ManagementError):
    """An admin request with missing or ill-typed fields."""


class NotFound(ManagementError):
    """The named object does not exist."""


class ApplicationNotFound(NotFound):
    """No application with that name."""


class ModelNotFound(NotFound):
    """No model (or model version) with that name."""


class ReplicaNotFound(NotFound):
    """No replica with that id."""


class AlreadyExists(ManagementError):
    """An object with that name already exists."""


class Conflict(ManagementError):
    """The operation is valid but not allowed in the current state."""


class DeployFailed(ManagementError):
    """A model version's replicas did not become ready."""


class EnvironmentBuildFailed(DeployFailed):
    """Building a model's virtual environment failed (the message has the installer's output)."""


class RpcError(ClipperError):
    """A malformed frame or a protocol mismatch on the worker RPC."""


class AuthError(ClipperError):
    """A request without the credentials it needs (the message never holds a token)."""


class Unauthorized(AuthError):
    """No bearer token, or one that is not valid here."""


class Forbidden(AuthError):
    """A valid token that is not scoped to what the request asked for."""
