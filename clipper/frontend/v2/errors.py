"""The one map from Clipper's exceptions to V2 REST statuses and gRPC codes.

V2 errors are `{"error": "<message>"}` (REST) or an aborted call (gRPC); the first
matching class decides.
"""

from __future__ import annotations

import grpc

from clipper import exceptions as errors

__all__ = ["grpc_code", "http_status"]

_MAP: tuple[tuple[type[errors.ClipperError], int, grpc.StatusCode], ...] = (
    (errors.InvalidInput, 400, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.PayloadTooLarge, 413, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.UnknownVersion, 404, grpc.StatusCode.NOT_FOUND),
    (errors.UnknownApplication, 404, grpc.StatusCode.NOT_FOUND),
    (errors.NotFound, 404, grpc.StatusCode.NOT_FOUND),
    (errors.DeadlineExceeded, 504, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.ModelError, 500, grpc.StatusCode.INTERNAL),
    (errors.ReplicaError, 503, grpc.StatusCode.UNAVAILABLE),
    (errors.Unauthorized, 401, grpc.StatusCode.UNAUTHENTICATED),
    (errors.Forbidden, 403, grpc.StatusCode.PERMISSION_DENIED),
)


def http_status(exc: errors.ClipperError) -> int:
    """The REST status of an error."""
    for cls, status, _ in _MAP:
        if isinstance(exc, cls):
            return status
    return 500


def grpc_code(exc: errors.ClipperError) -> grpc.StatusCode:
    """The gRPC status code of an error."""
    for cls, _, code in _MAP:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL
