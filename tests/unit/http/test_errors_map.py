"""The one error table: each exception's HTTP status, gRPC status, `error` text and `code`."""

from __future__ import annotations

import grpc
import orjson
import pytest

from clipper.core import exceptions as errors
from clipper.http.errors import ERROR_TABLE, error_body, error_class, error_row, oip_error_body

# Every exception class, with the (HTTP status, gRPC status, Clipper `error` text) it answers
# with: the product's contract, written out so that a change to the table is a visible one.
EXPECTED: dict[type[errors.ClipperError], tuple[int, grpc.StatusCode, str]] = {
    errors.ClipperError: (500, grpc.StatusCode.INTERNAL, "Internal error"),
    errors.InternalError: (500, grpc.StatusCode.INTERNAL, "Internal error"),
    errors.RequestRejected: (400, grpc.StatusCode.INVALID_ARGUMENT, "Bad request"),
    errors.MalformedRequest: (400, grpc.StatusCode.INVALID_ARGUMENT, "Bad request"),
    errors.MethodNotAllowed: (405, grpc.StatusCode.UNIMPLEMENTED, "Method not allowed"),
    errors.RequestTimeout: (408, grpc.StatusCode.DEADLINE_EXCEEDED, "Request timeout"),
    errors.UriTooLong: (414, grpc.StatusCode.INVALID_ARGUMENT, "URI too long"),
    errors.UnsupportedTransferCoding: (501, grpc.StatusCode.UNIMPLEMENTED, "Not implemented"),
    errors.HeadersTooLarge: (431, grpc.StatusCode.INVALID_ARGUMENT, "Headers too large"),
    errors.TooManyConnections: (503, grpc.StatusCode.UNAVAILABLE, "Service unavailable"),
    errors.ServerBusy: (503, grpc.StatusCode.UNAVAILABLE, "Service unavailable"),
    errors.QueryError: (400, grpc.StatusCode.INVALID_ARGUMENT, "Query processing error"),
    errors.InvalidInput: (400, grpc.StatusCode.INVALID_ARGUMENT, "Json error"),
    errors.UnknownApplication: (404, grpc.StatusCode.NOT_FOUND, "Unknown application"),
    errors.UnknownVersion: (404, grpc.StatusCode.NOT_FOUND, "Query processing error"),
    errors.PayloadTooLarge: (413, grpc.StatusCode.RESOURCE_EXHAUSTED, "Payload too large"),
    errors.DeadlineExceeded: (504, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded"),
    errors.Overloaded: (429, grpc.StatusCode.RESOURCE_EXHAUSTED, "Server overloaded"),
    errors.ReplicaError: (503, grpc.StatusCode.UNAVAILABLE, "Model unavailable"),
    errors.ReplicaUnavailable: (503, grpc.StatusCode.UNAVAILABLE, "Model unavailable"),
    errors.ReplicaCrashed: (503, grpc.StatusCode.UNAVAILABLE, "Model unavailable"),
    errors.ModelRaised: (500, grpc.StatusCode.INTERNAL, "Model error"),
    errors.ModelError: (500, grpc.StatusCode.INTERNAL, "Model error"),
    errors.WrongNumberOfOutputs: (500, grpc.StatusCode.INTERNAL, "Model error"),
    errors.ManagementError: (400, grpc.StatusCode.FAILED_PRECONDITION, "Json error"),
    errors.InvalidName: (400, grpc.StatusCode.INVALID_ARGUMENT, "Invalid name"),
    errors.InvalidInputType: (400, grpc.StatusCode.INVALID_ARGUMENT, "Invalid input type"),
    errors.InvalidRequest: (400, grpc.StatusCode.INVALID_ARGUMENT, "Json error"),
    errors.NotFound: (404, grpc.StatusCode.NOT_FOUND, "Not found"),
    errors.ApplicationNotFound: (404, grpc.StatusCode.NOT_FOUND, "Not found"),
    errors.ModelNotFound: (404, grpc.StatusCode.NOT_FOUND, "Not found"),
    errors.ReplicaNotFound: (404, grpc.StatusCode.NOT_FOUND, "Not found"),
    errors.AlreadyExists: (409, grpc.StatusCode.ALREADY_EXISTS, "Already exists"),
    errors.Conflict: (409, grpc.StatusCode.FAILED_PRECONDITION, "Conflict"),
    errors.DeployFailed: (500, grpc.StatusCode.INTERNAL, "Deploy failed"),
    errors.EnvironmentBuildFailed: (500, grpc.StatusCode.INTERNAL, "Deploy failed"),
    errors.ModelLoadError: (500, grpc.StatusCode.INTERNAL, "Model load failed"),
    errors.RpcError: (502, grpc.StatusCode.INTERNAL, "Worker protocol error"),
    errors.ServerUnreachable: (503, grpc.StatusCode.UNAVAILABLE, "Server unreachable"),
    errors.InvalidSettings: (400, grpc.StatusCode.INVALID_ARGUMENT, "Invalid settings"),
    errors.AuthError: (401, grpc.StatusCode.UNAUTHENTICATED, "Unauthorized"),
    errors.Unauthorized: (401, grpc.StatusCode.UNAUTHENTICATED, "Unauthorized"),
    errors.Forbidden: (403, grpc.StatusCode.PERMISSION_DENIED, "Forbidden"),
}


def _exception_tree(root: type[errors.ClipperError]) -> list[type[errors.ClipperError]]:
    found = [root]
    for sub in root.__subclasses__():
        found += _exception_tree(sub)
    return found


def test_every_class_of_the_exception_tree_has_exactly_one_row() -> None:
    import clipper.client
    import clipper.server  # noqa: F401

    rows = [row.exception for row in ERROR_TABLE]
    # clipper_admin's own UnconnectedException never crosses the wire: not in the table.
    tree = [
        cls
        for cls in _exception_tree(errors.ClipperError)
        if cls.__module__ != "clipper_admin.exceptions"
    ]

    assert sorted(cls.__name__ for cls in tree) == sorted(cls.__name__ for cls in rows)
    assert len(set(rows)) == len(rows)
    assert {cls.__module__ for cls in tree} == {"clipper.core.exceptions"}


@pytest.mark.parametrize(
    ("cls", "expected"), EXPECTED.items(), ids=lambda v: getattr(v, "__name__", "")
)
def test_each_exception_answers_with_its_row(
    cls: type[errors.ClipperError], expected: tuple[int, grpc.StatusCode, str]
) -> None:
    row = error_row(cls("what went wrong"))

    assert (row.http_status, grpc.StatusCode[row.grpc_status], row.error) == expected
    assert row.exception is cls
    assert row.code == cls.__name__


def test_the_expected_table_covers_every_row() -> None:
    assert {row.exception for row in ERROR_TABLE} == set(EXPECTED)


@pytest.mark.parametrize("row", ERROR_TABLE, ids=lambda row: row.code)
def test_every_code_maps_back_to_its_class(row: object) -> None:
    assert error_class(row.code) is row.exception  # type: ignore[attr-defined]


def test_an_unknown_code_maps_to_no_class() -> None:
    assert error_class("NoSuchError") is None


def test_a_subclass_outside_the_table_answers_with_its_nearest_ancestor() -> None:
    class PluginNotFound(errors.ModelNotFound):
        pass

    assert error_row(PluginNotFound("x")).code == "ModelNotFound"


def test_error_body_is_the_stable_json_shape() -> None:
    body = error_body(errors.InvalidInput("bad input"))

    assert body == b'{"error":"Json error","cause":"bad input","code":"InvalidInput"}'


def test_error_body_escapes_any_cause() -> None:
    cause = 'say "hi"\n\\ ünïcode'

    assert orjson.loads(error_body(errors.NotFound(cause))) == {
        "error": "Not found",
        "cause": cause,
        "code": "NotFound",
    }


def test_an_exception_that_is_not_clippers_is_an_internal_error_without_its_text() -> None:
    exc = KeyError("secret internals")

    assert error_row(exc).http_status == 500
    assert orjson.loads(error_body(exc)) == {
        "error": "Internal error",
        "cause": "unexpected server error",
        "code": "InternalError",
    }


def test_the_oip_body_carries_the_message_as_its_error() -> None:
    body = orjson.loads(oip_error_body(errors.UnknownVersion("no version 9 of m")))

    assert body == {
        "error": "no version 9 of m",
        "cause": "no version 9 of m",
        "code": "UnknownVersion",
    }
