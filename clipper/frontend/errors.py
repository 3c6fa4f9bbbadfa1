"""The one map from Clipper's exceptions to HTTP status and JSON error body."""

from __future__ import annotations

import orjson

from clipper import exceptions as errors

__all__ = ["error_body", "error_response"]

# Most specific first: the first matching class decides status and `error` kind.
_ERROR_MAP: tuple[tuple[type[errors.ClipperError], int, str], ...] = (
    (errors.InvalidInput, 400, "Json error"),
    (errors.UnknownVersion, 400, "Query processing error"),
    (errors.UnknownApplication, 404, "Unknown application"),
    (errors.PayloadTooLarge, 413, "Payload too large"),
    (errors.InvalidName, 400, "Invalid name"),
    (errors.InvalidInputType, 400, "Invalid input type"),
    (errors.InvalidRequest, 400, "Json error"),
    (errors.NotFound, 404, "Not found"),
    (errors.AlreadyExists, 409, "Already exists"),
    (errors.Conflict, 409, "Conflict"),
    (errors.DeployFailed, 500, "Deploy failed"),
    (errors.ReplicaError, 503, "Model unavailable"),
    (errors.DeadlineExceeded, 504, "Deadline exceeded"),
    (errors.RpcError, 502, "Worker protocol error"),
    (errors.Unauthorized, 401, "Unauthorized"),
    (errors.Forbidden, 403, "Forbidden"),
)


def error_response(exc: errors.ClipperError) -> tuple[int, str, str]:
    """(status, error kind, cause) for a domain error."""
    for cls, status, kind in _ERROR_MAP:
        if isinstance(exc, cls):
            return status, kind, str(exc)
    return 500, "Internal error", str(exc)


def error_body(kind: str, cause: str) -> bytes:
    """The stable JSON error shape: {"error": kind, "cause": cause}."""
    return orjson.dumps({"error": kind, "cause": cause})
