"""Which request targets take the query API's direct predict path, and how many it keeps."""

from __future__ import annotations

from typing import Any

from clipper.dataplane.dataplane import DataPlane
from clipper.frontend.clipper_api.query_api import _PREDICT_URLS_HELD, QueryApi, _predict_app
from clipper.metrics.server_metrics import ServerMetrics


def test_predict_targets_are_recognised_with_or_without_a_query_string() -> None:
    assert _predict_app(b"/app/predict") == "app"
    assert _predict_app(b"/app/predict?trace=1") == "app"
    for target in [b"/app/update", b"/a/b/predict", b"app/predict", b"/a%20b/predict",
                   b"/predict", b"/app/predict/"]:  # fmt: skip
        assert _predict_app(target) is None


async def test_the_remembered_targets_stay_bounded_and_answers_stay_right() -> None:
    api = QueryApi(DataPlane(), ServerMetrics(), 1 << 20)
    replies: list[Any] = []
    body = b'{"input": [1.0]}'

    for index in range(_PREDICT_URLS_HELD + 10):
        target = b"/app%d/predict" % index
        assert api.respond(b"POST", target, [], body, replies.append)
    assert not api.respond(b"POST", b"/app/update", [], body, replies.append)

    assert len(api._predict_urls) <= _PREDICT_URLS_HELD
    assert len(replies) == _PREDICT_URLS_HELD + 10
    status, _, answer = replies[-1]
    assert status == 404
    assert b"app%d" % (_PREDICT_URLS_HELD + 9) in answer
