"""The route table: most specific pattern first, 404 and 405 in the shape of the frontend
that owns the path, parameters, and the routes it refuses to compile."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clipper.http.errors import error_body, error_row, oip_error_body
from clipper.http.reply import Reply
from clipper.http.routes import Match, Refusal, Request, Route, RouteGroup, RouteTable


def named(name: str) -> Any:
    async def handler(request: Request) -> Reply:
        return Reply(200, orjson.dumps({"route": name, **request.params}))

    return handler


def clipper_error(exc: BaseException) -> Reply:
    return Reply(error_row(exc).http_status, error_body(exc))


def oip_error(exc: BaseException) -> Reply:
    return Reply(error_row(exc).http_status, oip_error_body(exc))


CLIPPER = RouteGroup(
    [
        Route("POST", "/{app}/predict", named("predict")),
        Route("GET", "/{app}/ready", named("app-ready")),
        Route("GET", "/healthz", named("healthz")),
    ],
    clipper_error,
)
OIP = RouteGroup(
    [
        Route("GET", "/v2", named("server")),
        Route("GET", "/v2/models/{name}", named("model")),
        Route("GET", "/v2/models/{name}/ready", named("model-ready")),
        Route("POST", "/v2/models/{name}/infer", named("infer")),
        Route("POST", "/v2/models/{name}/versions/{version}/infer", named("infer")),
    ],
    oip_error,
    prefix="/v2/",
)
TABLE = RouteTable([CLIPPER, OIP])


async def answer(method: str, path: str) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    scope = {"method": method, "path": path, "headers": []}
    reply = await TABLE.dispatch(scope, None)
    return reply.status, orjson.loads(reply.body), dict(reply.headers)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/sum/predict", {"route": "predict", "app": "sum"}),
        ("POST", "/v2/predict", {"route": "predict", "app": "v2"}),  # Clipper's app "v2"
        ("GET", "/v2/ready", {"route": "app-ready", "app": "v2"}),
        ("GET", "/v2", {"route": "server"}),
        ("GET", "/v2/", {"route": "server"}),
        ("GET", "//v2/models/m/", {"route": "model", "name": "m"}),
        ("GET", "/v2/models/ready/ready", {"route": "model-ready", "name": "ready"}),
        ("POST", "/v2/models/m/versions/3/infer", {"route": "infer", "name": "m", "version": "3"}),
    ],
)
async def test_a_path_reaches_its_route_with_its_parameters(
    method: str, path: str, expected: dict[str, str]
) -> None:
    assert await answer(method, path) == (200, expected, {b"content-type": b"application/json"})


async def test_an_unknown_path_is_answered_in_the_shape_of_the_frontend_it_falls_under() -> None:
    status, clipper_body, _ = await answer("GET", "/no/such/thing")
    assert (status, clipper_body["error"], clipper_body["code"]) == (404, "Not found", "NotFound")

    status, oip_body, _ = await answer("GET", "/v2/models/m/versions")
    assert (status, oip_body["code"]) == (404, "NotFound")
    assert oip_body["error"] == oip_body["cause"]  # the protocol's `error` is the message


async def test_a_known_path_asked_with_another_method_is_405_with_allow() -> None:
    status, body, headers = await answer("GET", "/v2/models/m/infer")
    assert (status, body["code"], headers[b"allow"]) == (405, "MethodNotAllowed", b"POST")

    status, body, headers = await answer("DELETE", "/sum/predict")
    assert (status, body["error"], headers[b"allow"]) == (405, "Method not allowed", b"POST")


async def test_a_handlers_clipper_error_is_answered_by_its_group() -> None:
    async def refuse(request: Request) -> Reply:
        from clipper.core.exceptions import ModelNotFound

        raise ModelNotFound("no model m")

    table = RouteTable([RouteGroup([Route("GET", "/v2/models/{name}", refuse)], oip_error)])
    reply = await table.dispatch({"method": "GET", "path": "/v2/models/m", "headers": []}, None)

    assert reply.status == 404
    assert orjson.loads(reply.body)["error"] == "no model m"


def test_direct_forms_are_found_only_for_routes_that_have_one() -> None:
    def direct(params: Any, headers: Any, body: bytes, done: Any) -> None:
        done((200, b"", b""))

    table = RouteTable([RouteGroup([Route("POST", "/{app}/predict", named("p"), direct),
                                    Route("POST", "/{app}/update", named("u"))],
                                   clipper_error)])  # fmt: skip

    assert table.direct("POST", "/a/predict") == (direct, {"app": "a"})
    assert table.direct("POST", "/a/update") is None
    assert table.direct("GET", "/a/predict") is None
    assert isinstance(table.match("POST", "/a/update"), Match)
    assert isinstance(table.match("POST", "/a/b"), Refusal)


@pytest.mark.parametrize(
    ("routes", "reason"),
    [
        ([Route("GET", "/a/{x}", named("1")), Route("GET", "/a/{y}", named("2"))], "names its"),
        ([Route("GET", "/a", named("1")), Route("GET", "/a/", named("2"))], "two routes"),
        ([Route("GET", "a/b", named("1"))], "starts with"),
        ([Route("GET", "/{x}/{x}", named("1"))], "bad parameter"),
        ([Route("GET", "/{not-a-name}", named("1"))], "bad parameter"),
    ],
)
def test_ambiguous_or_malformed_routes_do_not_compile(routes: list[Route], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        RouteTable([RouteGroup(routes, clipper_error)])
