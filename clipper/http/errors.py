"""The one error table: each of Clipper's exceptions with its HTTP status, gRPC status,
Clipper `error` text and stable machine-readable `code` (the exception's class name).

Every surface answers from it: Clipper's REST API and the admin API with
`{"error": <text>, "cause": <message>, "code": <code>}` (Clipper 0.4.1's `error` and `cause`
kept), the Open Inference Protocol's REST with the same keys (its `error` is the message, as
the protocol says), its gRPC with the row's status, and the query port's HTTP/1.1 server
with canned bodies built here. `clipper.client` maps `code` back to the class.

Invariant: every class of `clipper.core.exceptions` has exactly one row (a test walks the
tree); an exception is answered by the row of the nearest class in its MRO, and anything
that is not a ClipperError by `InternalError`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from clipper.core import exceptions as errors

__all__ = [
    "ERROR_TABLE",
    "ErrorRow",
    "error_body",
    "error_class",
    "error_row",
    "error_schema",
    "oip_error_body",
]


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """How one exception class is answered."""

    exception: type[errors.ClipperError]
    http_status: int
    grpc_status: str
    """The name of a `grpc.StatusCode` (a name, so that this module imports no gRPC)."""
    error: str
    """Clipper's `error` text: the kind of error, kept as Clipper 0.4.1 wrote it."""

    @property
    def code(self) -> str:
        """The stable machine-readable code: the exception's class name."""
        return self.exception.__name__


def _row(exception: type[errors.ClipperError], http: int, grpc: str, error: str) -> ErrorRow:
    return ErrorRow(exception, http, grpc, error)


ERROR_TABLE: tuple[ErrorRow, ...] = (
    _row(errors.ClipperError, 500, "INTERNAL", "Internal error"),
    _row(errors.InternalError, 500, "INTERNAL", "Internal error"),
    _row(errors.RequestRejected, 400, "INVALID_ARGUMENT", "Bad request"),
    _row(errors.MalformedRequest, 400, "INVALID_ARGUMENT", "Bad request"),
    _row(errors.MethodNotAllowed, 405, "UNIMPLEMENTED", "Method not allowed"),
    _row(errors.RequestTimeout, 408, "DEADLINE_EXCEEDED", "Request timeout"),
    _row(errors.UriTooLong, 414, "INVALID_ARGUMENT", "URI too long"),
    _row(errors.UnsupportedTransferCoding, 501, "UNIMPLEMENTED", "Not implemented"),
    _row(errors.HeadersTooLarge, 431, "INVALID_ARGUMENT", "Headers too large"),
    _row(errors.TooManyConnections, 503, "UNAVAILABLE", "Service unavailable"),
    _row(errors.ServerBusy, 503, "UNAVAILABLE", "Service unavailable"),
    _row(errors.QueryError, 400, "INVALID_ARGUMENT", "Query processing error"),
    _row(errors.InvalidInput, 400, "INVALID_ARGUMENT", "Json error"),
    _row(errors.UnknownApplication, 404, "NOT_FOUND", "Unknown application"),
    # 404 on every surface: the version named does not exist, as an unknown application or
    # model does not (Clipper 0.4.1 answered 400; its `error` text stays).
    _row(errors.UnknownVersion, 404, "NOT_FOUND", "Query processing error"),
    _row(errors.PayloadTooLarge, 413, "RESOURCE_EXHAUSTED", "Payload too large"),
    _row(errors.DeadlineExceeded, 504, "DEADLINE_EXCEEDED", "Deadline exceeded"),
    _row(errors.Overloaded, 429, "RESOURCE_EXHAUSTED", "Server overloaded"),
    _row(errors.ReplicaError, 503, "UNAVAILABLE", "Model unavailable"),
    _row(errors.ReplicaUnavailable, 503, "UNAVAILABLE", "Model unavailable"),
    _row(errors.ReplicaCrashed, 503, "UNAVAILABLE", "Model unavailable"),
    _row(errors.ModelRaised, 500, "INTERNAL", "Model error"),  # before: the code's class
    _row(errors.ModelError, 500, "INTERNAL", "Model error"),
    _row(errors.WrongNumberOfOutputs, 500, "INTERNAL", "Model error"),
    _row(errors.ManagementError, 400, "FAILED_PRECONDITION", "Json error"),
    _row(errors.InvalidName, 400, "INVALID_ARGUMENT", "Invalid name"),
    _row(errors.InvalidInputType, 400, "INVALID_ARGUMENT", "Invalid input type"),
    _row(errors.InvalidRequest, 400, "INVALID_ARGUMENT", "Json error"),
    _row(errors.NotFound, 404, "NOT_FOUND", "Not found"),
    _row(errors.ApplicationNotFound, 404, "NOT_FOUND", "Not found"),
    _row(errors.ModelNotFound, 404, "NOT_FOUND", "Not found"),
    _row(errors.ReplicaNotFound, 404, "NOT_FOUND", "Not found"),
    _row(errors.AlreadyExists, 409, "ALREADY_EXISTS", "Already exists"),
    _row(errors.Conflict, 409, "FAILED_PRECONDITION", "Conflict"),
    _row(errors.DeployFailed, 500, "INTERNAL", "Deploy failed"),
    _row(errors.EnvironmentBuildFailed, 500, "INTERNAL", "Deploy failed"),
    _row(errors.ModelLoadError, 500, "INTERNAL", "Model load failed"),
    _row(errors.RpcError, 502, "INTERNAL", "Worker protocol error"),
    _row(errors.ServerUnreachable, 503, "UNAVAILABLE", "Server unreachable"),
    _row(errors.InvalidSettings, 400, "INVALID_ARGUMENT", "Invalid settings"),
    _row(errors.AuthError, 401, "UNAUTHENTICATED", "Unauthorized"),
    _row(errors.Unauthorized, 401, "UNAUTHENTICATED", "Unauthorized"),
    _row(errors.Forbidden, 403, "PERMISSION_DENIED", "Forbidden"),
)

_BY_CLASS: dict[type[BaseException], ErrorRow] = {row.exception: row for row in ERROR_TABLE}
_BY_CODE: dict[str, ErrorRow] = {row.code: row for row in ERROR_TABLE}
_INTERNAL = _BY_CLASS[errors.InternalError]


def error_row(exc: BaseException) -> ErrorRow:
    """The row that answers `exc`: its nearest class in the table, else InternalError's."""
    for cls in type(exc).__mro__:
        row = _BY_CLASS.get(cls)
        if row is not None:
            return row
    return _INTERNAL


def error_class(code: str) -> type[errors.ClipperError] | None:
    """The exception class of a `code` (None for a code this version does not know)."""
    row = _BY_CODE.get(code)
    return None if row is None else row.exception


def error_body(exc: BaseException) -> bytes:
    """Clipper's JSON error body: `{"error", "cause", "code"}`. The cause of an exception
    that is not a ClipperError (a bug) is not shown: it may hold anything."""
    row = error_row(exc)
    return orjson.dumps({"error": row.error, "cause": _cause(exc), "code": row.code})


def oip_error_body(exc: BaseException) -> bytes:
    """The Open Inference Protocol's JSON error body: its `error` is the message (as the
    protocol says), with the same `cause` and `code` as Clipper's."""
    cause = _cause(exc)
    return orjson.dumps({"error": cause, "cause": cause, "code": error_row(exc).code})


def _cause(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, errors.ClipperError) else "unexpected server error"


def error_schema(error_means: str = "Clipper's kind of error") -> dict[str, object]:
    """The JSON schema of an error body, for the OpenAPI documents."""
    return {
        "type": "object",
        "required": ["error", "cause", "code"],
        "properties": {
            "error": {"type": "string", "description": error_means},
            "cause": {"type": "string", "description": "what went wrong, for a person"},
            "code": {
                "type": "string",
                "enum": sorted(row.code for row in ERROR_TABLE),
                "description": "the exception's class name (docs/admin-api.md#errors)",
            },
        },
    }
