"""The Python and CLI helpers of model selection: the requests they send."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from clipper.cli.commands import policy_params
from clipper.client import AdminClient, QueryClient
from clipper.core.exceptions import InvalidRequest


class Recorder:
    """A MockTransport handler that keeps each request's path and JSON body."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[tuple[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.url.path, json.loads(request.content or b"null")))
        return httpx.Response(200, json=self.answer)


def test_set_app_policy_posts_the_policy_and_its_params() -> None:
    recorder = Recorder({"name": "app"})
    admin = AdminClient(transport=httpx.MockTransport(recorder))

    admin.set_app_policy("app", "ab", {"weights": {"a": 9, "b": 1}})

    assert recorder.requests == [
        ("/admin/set_app_policy",
         {"app_name": "app", "policy": "ab", "policy_params": {"weights": {"a": 9, "b": 1}}}),
    ]  # fmt: skip


def test_add_app_sends_a_policy_only_when_given() -> None:
    recorder = Recorder({"name": "app"})
    admin = AdminClient(transport=httpx.MockTransport(recorder))

    admin.add_app("app", "doubles", "-1", 1000)
    admin.add_app("app", "doubles", "-1", 1000, "exp3", {"seed": 1})

    assert "policy" not in recorder.requests[0][1]
    assert (recorder.requests[1][1]["policy"], recorder.requests[1][1]["policy_params"]) == (
        "exp3",
        {"seed": 1},
    )


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({"uid": 1, "input": [1.0], "label": 2}, {"uid": 1, "input": [1.0], "label": 2}),
        ({"query_id": 7, "label": "cat"}, {"query_id": 7, "label": "cat"}),
        ({"query_id": 7, "reward": 0.5}, {"query_id": 7, "reward": 0.5}),
    ],
)
def test_update_sends_either_form_of_feedback(kwargs: dict[str, Any], body: Any) -> None:
    recorder = Recorder({"rewards": {}})
    client = QueryClient(transport=httpx.MockTransport(recorder))

    client.update("app", **kwargs)

    assert recorder.requests == [("/app/update", body)]


def test_cli_policy_params_parse_json_values_and_keep_plain_strings() -> None:
    params = policy_params(["epsilon=0.2", 'weights={"a": 9}', "primary=model-a"])

    assert params == {"epsilon": 0.2, "weights": {"a": 9}, "primary": "model-a"}


def test_cli_policy_params_must_be_key_value_pairs() -> None:
    with pytest.raises(InvalidRequest, match="KEY=VALUE"):
        policy_params(["epsilon"])
