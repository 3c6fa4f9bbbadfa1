"""The one map from Clipper's exceptions to HTTP status, error kind and JSON body."""

from __future__ import annotations

import inspect

import orjson
import pytest

from clipper import exceptions as errors
from clipper.frontend.errors import error_body, error_response

# Every exception class, with the (status, error kind) it must answer with.
EXPECTED: dict[type[errors.ClipperError], tuple[int, str]] = {
    errors.InvalidInput: (400, "Json error"),
    errors.UnknownVersion: (400, "Query processing error"),
    errors.UnknownApplication: (404, "Unknown application"),
    errors.PayloadTooLarge: (413, "Payload too large"),
    errors.InvalidName: (400, "Invalid name"),
    errors.InvalidInputType: (400, "Invalid input type"),
    errors.InvalidRequest: (400, "Json error"),
    errors.NotFound: (404, "Not found"),
    errors.ApplicationNotFound: (404, "Not found"),
    errors.ModelNotFound: (404, "Not found"),
    errors.ReplicaNotFound: (404, "Not found"),
    errors.AlreadyExists: (409, "Already exists"),
    errors.Conflict: (409, "Conflict"),
    errors.DeployFailed: (500, "Deploy failed"),
    errors.EnvironmentBuildFailed: (500, "Deploy failed"),
    errors.ReplicaError: (503, "Model unavailable"),
    errors.ReplicaUnavailable: (503, "Model unavailable"),
    errors.ReplicaCrashed: (503, "Model unavailable"),
    errors.ModelError: (503, "Model unavailable"),
    errors.ClipperError: (500, "Internal error"),
    errors.QueryError: (500, "Internal error"),
    errors.ManagementError: (500, "Internal error"),
    errors.DeadlineExceeded: (504, "Deadline exceeded"),
    errors.RpcError: (502, "Worker protocol error"),
    errors.AuthError: (500, "Internal error"),
    errors.Unauthorized: (401, "Unauthorized"),
    errors.Forbidden: (403, "Forbidden"),
}


@pytest.mark.parametrize(
    ("cls", "expected"), EXPECTED.items(), ids=lambda v: getattr(v, "__name__", "")
)
def test_each_exception_maps_to_its_status_and_kind(
    cls: type[errors.ClipperError], expected: tuple[int, str]
) -> None:
    status, kind, cause = error_response(cls("what went wrong"))

    assert ((status, kind), cause) == (expected, "what went wrong")


def test_every_exception_class_has_an_expected_mapping() -> None:
    classes = {
        value
        for value in vars(errors).values()
        if inspect.isclass(value) and issubclass(value, errors.ClipperError)
    }

    assert classes == set(EXPECTED)


def test_error_body_is_the_stable_json_shape() -> None:
    assert error_body("Json error", "bad input") == b'{"error":"Json error","cause":"bad input"}'


def test_error_body_escapes_any_cause() -> None:
    cause = 'say "hi"\n\\ ünïcode'

    assert orjson.loads(error_body("Not found", cause)) == {"error": "Not found", "cause": cause}


def test_response_and_body_compose_for_a_real_error() -> None:
    status, kind, cause = error_response(errors.UnknownApplication("No application named 'x'"))

    assert status == 404
    assert orjson.loads(error_body(kind, cause)) == {
        "error": "Unknown application",
        "cause": "No application named 'x'",
    }
