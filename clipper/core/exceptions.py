"""The one exception tree of Clipper.

    ClipperError
    ├── InternalError               an unexpected failure of the server itself (a bug)
    ├── RequestRejected             an HTTP request refused before any handler read it
    │   ├── MalformedRequest        not parseable as HTTP/1.1
    │   ├── MethodNotAllowed        a route that does not take the request's method
    │   ├── RequestTimeout          headers or body did not arrive in time
    │   ├── UriTooLong
    │   ├── HeadersTooLarge         too many header bytes or fields
    │   ├── UnsupportedTransferCoding  a transfer coding other than chunked
    │   └── TooManyConnections      the server holds as many connections as it may
    ├── QueryError                  a query that cannot be answered as asked
    │   ├── InvalidInput            bad JSON, missing keys, wrong element types
    │   ├── UnknownApplication
    │   ├── UnknownVersion          the query named a version that does not exist
    │   └── PayloadTooLarge
    ├── DeadlineExceeded            the query's deadline passed before a model answered
    ├── Overloaded                  refused at once: its model could not answer it in time
    ├── ReplicaError                what went wrong on the model side (become default answers)
    │   ├── ReplicaUnavailable      no replica connected
    │   ├── ReplicaCrashed          the worker died with the batch in flight
    │   └── ModelError              the model raised, or returned the wrong number of outputs
    │       ├── ModelRaised         the model's own code raised (its text is not for clients)
    │       └── WrongNumberOfOutputs
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
    ├── ModelLoadError              an artifact that cannot be loaded in the worker's environment
    ├── RpcError                    malformed frames or protocol mismatch on the worker RPC
    ├── ServerUnreachable           (client side) the server refused, reset or timed out
    ├── InvalidSettings             a flag, variable or config file that does not validate
    └── AuthError                   a request without the credentials it needs
        ├── Unauthorized            no bearer token, or not a valid one
        └── Forbidden               a valid token not scoped to what was asked

Domain errors carry no HTTP status: `clipper.http.errors.ERROR_TABLE` maps each class here
to its HTTP status, gRPC status, Clipper `error` text and `code` (the class's name), which
the client maps back to the class.
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
    "HeadersTooLarge",
    "InternalError",
    "InvalidInput",
    "InvalidInputType",
    "InvalidName",
    "InvalidRequest",
    "InvalidSettings",
    "MalformedRequest",
    "ManagementError",
    "MethodNotAllowed",
    "ModelError",
    "ModelLoadError",
    "ModelNotFound",
    "ModelRaised",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "QueryError",
    "ReplicaCrashed",
    "ReplicaError",
    "ReplicaNotFound",
    "ReplicaUnavailable",
    "RequestRejected",
    "RequestTimeout",
    "RpcError",
    "ServerUnreachable",
    "TooManyConnections",
    "Unauthorized",
    "UnknownApplication",
    "UnknownVersion",
    "UnsupportedTransferCoding",
    "UriTooLong",
    "WrongNumberOfOutputs",
]


class ClipperError(Exception):
    """Base of every error Clipper raises on purpose."""


class InternalError(ClipperError):
    """An unexpected failure of the server itself; the answer says no more than that."""


class RequestRejected(ClipperError):
    """An HTTP request the server refused before any handler read it (then it closes)."""


class MalformedRequest(RequestRejected):
    """Bytes that do not parse as an HTTP/1.1 request."""


class MethodNotAllowed(RequestRejected):
    """A route that exists but does not take the request's method."""


class RequestTimeout(RequestRejected):
    """The request's headers or body did not arrive within the server's timeouts."""


class UriTooLong(RequestRejected):
    """A request line over the header limit."""


class HeadersTooLarge(RequestRejected):
    """Headers over the byte limit, or more header fields than allowed."""


class UnsupportedTransferCoding(RequestRejected):
    """A request body in a transfer coding the server does not decode (only `chunked`)."""


class TooManyConnections(RequestRejected):
    """The server already holds as many connections as it may."""


class ServerBusy(RequestRejected):
    """The server already buffers as many request-body bytes as it may
    (`max_buffered_body_bytes`); the client may try again."""


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


class Overloaded(ClipperError):
    """A query refused at once, when queued (admission control): its model version could
    not have answered it by its deadline, or its queue is full. `retry_after_s` estimates
    when the queue ahead of it will have drained. Raised only for an app whose `overload`
    is `reject`; under `default` the query gets the app's default output instead."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ReplicaError(ClipperError):
    """The model side failed; the query is answered with the app's default output."""


class ReplicaUnavailable(ReplicaError):
    """No replica of the model version is connected."""


class ReplicaCrashed(ReplicaError):
    """The worker process died while it held the batch."""


class ModelError(ReplicaError):
    """The model raised, or returned a wrong number of outputs."""


class ModelRaised(ModelError):
    """The model's own code raised: `error_type` is the exception's class name, `message`
    its text (which may hold the model's data: see `AppRecord.show_model_errors`)."""

    def __init__(self, error_type: str, message: str = "") -> None:
        super().__init__(f"{error_type}: {message}" if message else error_type)
        self.error_type = error_type
        self.message = message


class WrongNumberOfOutputs(ModelError):
    """The model returned None, or not one output per input."""


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


class ModelLoadError(ClipperError):
    """The artifact cannot be loaded in this environment (raised in the worker)."""


class RpcError(ClipperError):
    """A malformed frame or a protocol mismatch on the worker RPC."""


class AuthError(ClipperError):
    """A request without the credentials it needs (the message never holds a token)."""


class Unauthorized(AuthError):
    """No bearer token, or one that is not valid here."""


class Forbidden(AuthError):
    """A valid token that is not scoped to what the request asked for."""


class ServerUnreachable(ClipperError):
    """The server could not be reached (refused, reset or timed-out connection); raised by
    the client, never sent by a server."""


class InvalidSettings(ClipperError):
    """Settings that do not validate: a CLI flag, a `CLIPPER_*` variable or a config file's
    key (unknown, or of the wrong type); raised where `Settings` are built, never sent by a
    server."""
