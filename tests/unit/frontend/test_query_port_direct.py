"""Which request targets take the query port's direct predict path, and how many it keeps."""

from __future__ import annotations

from typing import Any

from clipper.dataplane.dataplane import DataPlane
from clipper.frontend.clipper_api.query_api import ClipperQueryApi
from clipper.frontend.query_port import DIRECT_TARGETS_HELD, QueryPort
from clipper.metrics.server_metrics import ServerMetrics

BODY = b'{"input": [1.0]}'


def query_port() -> QueryPort:
    return QueryPort(ClipperQueryApi(DataPlane(), ServerMetrics(), 1 << 20))


def test_predict_targets_take_the_direct_path_with_or_without_a_query_string() -> None:
    port = query_port()
    replies: list[Any] = []

    for target in [b"/app/predict", b"/app/predict?trace=1", b"/app/predict/"]:
        assert port.respond(b"POST", target, [], BODY, replies.append)

    assert [reply[0] for reply in replies] == [404, 404, 404]  # no app "app": its answer
    assert all(b'"code":"UnknownApplication"' in reply[2] for reply in replies)


def test_other_targets_and_methods_go_through_the_asgi_app() -> None:
    port = query_port()
    replies: list[Any] = []

    for target in [b"/app/update", b"/a/b/predict", b"/a%20b/predict", b"/predict",
                   b"/app/ready", b"/\xff/predict"]:  # fmt: skip
        assert not port.respond(b"POST", target, [], BODY, replies.append)
    assert not port.respond(b"GET", b"/app/predict", [], b"", replies.append)

    assert replies == []


async def test_the_remembered_targets_stay_bounded_and_answers_stay_right() -> None:
    port = query_port()
    replies: list[Any] = []

    for index in range(DIRECT_TARGETS_HELD + 10):
        assert port.respond(b"POST", b"/app%d/predict" % index, [], BODY, replies.append)

    assert len(port._direct_targets) <= DIRECT_TARGETS_HELD
    assert len(replies) == DIRECT_TARGETS_HELD + 10
    status, _, answer = replies[-1]
    assert status == 404
    assert b"app%d" % (DIRECT_TARGETS_HELD + 9) in answer
