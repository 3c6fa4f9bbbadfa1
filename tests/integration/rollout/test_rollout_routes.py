"""Canary rollouts judged on feedback, and of models answering through a selection policy
or a pipeline step (issue 23): the reward of each version's answers is compared on the
same window, and the split takes the rolled model's share of a routed app's traffic."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.steady_load import SteadyLoad
from clipper.artifacts.python import closure_artifact
from tests.integration.cluster import ServerHandle, deploy
from tests.integration.rollout.test_rollouts import start
from tests.integration.rollout.versions import answers, ended, raises_on_tenth

pytestmark = pytest.mark.integration

NO_LATENCY = {"max_p50_ratio": None, "max_p99_ratio": None}
"""A fresh replica's first queries are slow, what a step of a few seconds cannot amortise."""
REWARD = {"min_reward_ratio": {"threshold": 0.9, "min_queries": 20}, **NO_LATENCY}
"""The new version's mean reward must stay at 90% of the current one's, on 20 feedbacks."""


def capped(output: Any) -> float:
    """The reward of an answer: its output, at most 1."""
    return min(1.0, max(0.0, float(output)))


def test_a_version_whose_answers_earn_less_reward_is_rolled_back(server: ServerHandle) -> None:
    deploy(server, "rewarded", answers(1.0))
    plan = {"shadow_s": 0, "steps": [0.5, 1.0], "step_s": 8, "min_queries": 15,
            "checks": REWARD}  # fmt: skip
    with SteadyLoad(server.query_url, "rewarded", threads=4, reward=capped) as load:
        start(server, "rewarded", "2", answers(0.3), **plan)
        status = ended(server, "rewarded", 15)
    assert status["state"] == "rolled_back", status
    assert status["reason"].startswith(
        "step 1 (50%): min_reward_ratio: new version reward 0.3 vs current 1, under the "
        "limit 0.9 (threshold 0.9 x the current version's)"
    ), status["reason"]
    assert load.failures == []
    assert load.feedback_failures == []
    assert load.outputs[0.3] > 0  # the new version did answer, and was judged on it
    assert server.admin.get_current_model_version("rewarded") == "1"


def test_a_model_of_an_ab_app_is_promoted_and_rolled_back_within_its_share(
    server: ServerHandle,
) -> None:
    deploy(server, "arm-a", answers(1.0), link=False)
    deploy(server, "arm-b", answers(3.0), link=False)
    server.admin.add_app("ab", "doubles", default_output="-1", latency_slo_micros=1_000_000,
                         policy="ab")  # fmt: skip
    server.admin.add_model_links("ab", ["arm-a", "arm-b"])
    plan = {"shadow_s": 0, "steps": [0.5, 1.0], "step_s": 1.5, "min_queries": 10,
            "checks": NO_LATENCY}  # fmt: skip
    with SteadyLoad(server.query_url, "ab", threads=4) as load:
        start(server, "arm-a", "2", answers(2.0), **plan)
        promoted = ended(server, "arm-a", 15)
        start(server, "arm-a", "3", raises_on_tenth(4.0), **{**plan, "step_s": 5})
        rolled_back = ended(server, "arm-a", 15)
    assert promoted["state"] == "promoted", promoted
    assert rolled_back["state"] == "rolled_back", rolled_back
    assert "max_error_rate: new version error_rate" in rolled_back["reason"]
    assert load.failures == []  # what version 3 failed, version 2 answered
    assert server.admin.get_current_model_version("arm-a") == "2"
    seen = load.outputs
    assert min(seen[1.0], seen[2.0], seen[4.0]) > 0, seen  # each version of arm-a answered
    versions_a = seen[1.0] + seen[2.0] + seen[4.0]
    assert 0.3 < versions_a / (versions_a + seen[3.0]) < 0.7, seen  # arm-a kept its half


def test_a_pipeline_step_is_promoted_then_rolled_back_on_the_reward_of_the_answers(
    server: ServerHandle,
) -> None:
    deploy(server, "pre", plus(0.0), link=False, output_type="doubles")
    deploy(server, "post", first_value(), link=False)
    server.admin.add_app("piped", "doubles", default_output="-1", latency_slo_micros=1_000_000)
    server.admin.set_app_pipeline("piped", ["pre", "post"])
    plan = {"shadow_s": 0, "steps": [0.5, 1.0], "step_s": 1.5, "min_queries": 10,
            "checks": NO_LATENCY}  # fmt: skip
    with SteadyLoad(server.query_url, "piped", threads=4, reward=capped) as load:
        start_step(server, "2", plus(1.0), plan)
        promoted = ended(server, "pre", 15)
        start_step(server, "3", plus(-0.8), {**plan, "step_s": 8, "checks": REWARD})
        rolled_back = ended(server, "pre", 15)
    assert promoted["state"] == "promoted", promoted
    assert rolled_back["state"] == "rolled_back", rolled_back
    assert "min_reward_ratio: new version reward 0.2 vs current 1" in rolled_back["reason"]
    assert load.failures == []
    assert load.feedback_failures == []
    assert server.admin.get_current_model_version("pre") == "2"
    assert {1.0, 2.0} <= set(load.outputs), load.outputs  # both of pre's versions answered


def start_step(server: ServerHandle, version: str, func: Any, plan: dict[str, Any]) -> None:
    """Upload `func` as a new version of the pipeline's first step and roll it out."""
    server.admin.upload_artifact("pre", version, closure_artifact(func))
    server.admin.add_model("pre", version, "doubles", num_replicas=1, output_type="doubles",
                           rollout=plan)  # fmt: skip


def plus(offset: float) -> Any:
    """A first pipeline step: the constant 1 plus `offset`, as a one-number vector."""

    def predict(inputs: list[Any]) -> list[list[float]]:
        return [[1.0 + offset] for _ in inputs]

    return predict


def first_value() -> Any:
    """A last pipeline step: the first number of its input."""

    def predict(inputs: list[Any]) -> list[float]:
        return [float(x[0]) for x in inputs]

    return predict
