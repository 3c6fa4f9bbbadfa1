"""Canary rollouts under steady load (issue 23): a good version is promoted through every
step, a bad one is rolled back by the check it fails, and no client sees a failure."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from benchmarks.steady_load import SteadyLoad
from clipper.artifacts.python import closure_artifact
from clipper.core.exceptions import Conflict
from tests.integration.cluster import ServerHandle, deploy, wait_until
from tests.integration.rollout.versions import answers, ended, raises_on_tenth

pytestmark = pytest.mark.integration

FAST = {"shadow_s": 1.0, "step_s": 1.0, "min_queries": 15}
"""Every default step, short: a shadow second, then 5%, 25%, 50% and 100% a second each."""


def start(server: ServerHandle, app: str, version: str, func: Any, **plan: Any) -> None:
    """Upload `func` as a new version of `app`'s model and roll it out with `plan`."""
    server.admin.upload_artifact(app, version, closure_artifact(func))
    server.admin.add_model(app, version, "doubles", num_replicas=1, rollout=plan)


def at_step(server: ServerHandle, model: str, step: int, timeout_s: float) -> None:
    """Wait until the model's rollout runs at `step` (1 is the first) or later."""

    def there() -> bool:
        status = server.admin.get_rollout(model)
        assert status is not None
        assert status["state"] == "running", status["reason"]
        return bool(status["step"] >= step and "new" in status)

    wait_until(there, timeout_s, f"the rollout of {model} at step {step}")


def test_a_good_version_is_promoted_through_every_step(server: ServerHandle) -> None:
    deploy(server, "good", answers(1.0), batch_size=1)
    with SteadyLoad(server.query_url, "good") as load:
        start(server, "good", "2", answers(1.0), **FAST)
        status = ended(server, "good", 15)
    assert status["state"] == "promoted", status
    assert server.admin.get_current_model_version("good") == "2"
    assert load.failures == []
    steps = [e["detail"]["step"] for e in server.admin.get_events(limit=50)
             if e["kind"] == "rollout_step"]  # fmt: skip
    assert steps == [2, 3, 4, 5]
    assert server.admin.get_model("good", "1")["is_current_version"] is False  # type: ignore[index]


def test_a_version_failing_a_tenth_of_its_queries_is_rolled_back_unseen(
    server: ServerHandle,
) -> None:
    deploy(server, "flaky", answers(1.0))
    with SteadyLoad(server.query_url, "flaky") as load:
        start(server, "flaky", "2", raises_on_tenth(2.0), shadow_s=0, step_s=5, min_queries=15)
        status = ended(server, "flaky", 10)
        answered_then = load.answered
        wait_until(lambda: load.answered > answered_then + 20, 10, "queries after the rollback")
    assert status["state"] == "rolled_back", status
    assert status["reason"].startswith("step 1 (5%): max_error_rate: new version error_rate")
    assert "threshold 0.01" in status["reason"]
    assert load.failures == []  # each input the new version failed was answered by version 1
    assert server.admin.get_current_model_version("flaky") == "1"
    assert server.admin.get_num_replicas("flaky", "2") == 0  # parked, still registered
    events = [e for e in server.admin.get_events(limit=20) if e["kind"] == "rollout_rolled_back"]
    assert events[-1]["detail"]["check"]["name"] == "max_error_rate"


def test_a_version_three_times_slower_is_rolled_back_on_p99(server: ServerHandle) -> None:
    deploy(server, "slow", answers(1.0, 0.01))
    plan = {"shadow_s": 0, "steps": [0.5, 1.0], "step_s": 8, "latency_slack_s": 0.002,
            "checks": {"max_p50_ratio": None, "max_p99_ratio": 1.2}}  # fmt: skip
    with SteadyLoad(server.query_url, "slow", threads=4, pause_s=0.02) as load:
        start(server, "slow", "2", answers(1.0, 0.03), **plan)
        status = ended(server, "slow", 12)
    assert status["state"] == "rolled_back", status
    assert "max_p99_ratio: new version p99_s" in status["reason"]
    assert "(threshold 1.2 x the current version's)" in status["reason"]
    assert load.failures == []


def test_a_version_whose_answers_differ_is_stopped_in_the_shadow_step(
    server: ServerHandle,
) -> None:
    deploy(server, "shadowed", answers(1.0))
    with SteadyLoad(server.query_url, "shadowed") as load:
        start(server, "shadowed", "2", answers(2.0), shadow_s=5, step_s=5, min_queries=15)
        status = ended(server, "shadowed", 10)
    assert status["state"] == "rolled_back", status
    assert status["reason"].startswith("step 1 (shadow): min_agreement: new version agreement 0")
    assert load.failures == []
    assert set(load.outputs) == {1.0}  # the shadow's answers were never returned


def test_abort_and_promote_mid_rollout(server: ServerHandle) -> None:
    deploy(server, "manual", answers(1.0))
    slow_plan = {
        "shadow_s": 0.5,
        "step_s": 60,
        "min_queries": 15,
        "checks": {"min_agreement": None, "max_p50_ratio": None, "max_p99_ratio": None},
    }  # answers differ on purpose; latency:
    # a fresh replica's first queries are slow, what a half-second step cannot amortise
    with SteadyLoad(server.query_url, "manual") as load:
        start(server, "manual", "2", answers(2.0), **slow_plan)
        at_step(server, "manual", 2, 10)
        wait_until(lambda: load.outputs[2.0] > 0, 10, "the new version's first answers")
        refusal = "under a rollout to version 2: abort or promote it before you start another"
        with pytest.raises(Conflict, match=refusal):
            server.admin.start_rollout("manual", "1")
        with pytest.raises(Conflict, match="under a rollout"):
            server.admin.delete_versioned_model("manual", "2")
        with pytest.raises(Conflict, match="under a rollout"):
            server.admin.set_model_version("manual", "2")
        status = cli(server, "rollout", "status", "manual")
        assert "manual: 1 -> 2, running, step 2 of 5 (5%)" in status
        assert "max_error_rate" in status
        assert "aborted" in cli(server, "rollout", "abort", "manual")
        seen = load.answered
        wait_until(lambda: load.answered > seen + 50, 10, "queries after the abort")
        after_abort = load.outputs[2.0]
        wait_until(lambda: load.answered > seen + 100, 10, "more queries")
        assert load.outputs[2.0] == after_abort  # all traffic back on version 1

        assert server.admin.get_num_replicas("manual", "2") == 0
        restarted = server.admin.start_rollout("manual", "2", slow_plan)  # replicas again
        assert (restarted["state"], restarted["step"]) == ("running", 1)
        wait_until(lambda: load.outputs[2.0] > after_abort, 10, "version 2's answers again")
        promoted = server.admin.promote_rollout("manual")
        seen = load.answered
        wait_until(lambda: load.answered > seen + 50, 10, "queries after the promotion")
    assert promoted["state"] == "promoted"
    assert promoted["reason"] == "promoted by an operator"
    assert server.admin.get_current_model_version("manual") == "2"
    assert load.failures == []


def test_a_rollout_resumes_at_its_step_after_a_restart(configured_server: Any) -> None:
    server = configured_server("resume")
    deploy(server, "resume", answers(1.0))
    with SteadyLoad(server.query_url, "resume"):
        steps = [0.05, {"share": 0.5, "duration_s": 60}, 1.0]
        start(server, "resume", "2", answers(1.0), shadow_s=0, steps=steps, step_s=1,
              min_queries=15)  # fmt: skip
        at_step(server, "resume", 2, 10)
    server.kill()
    again = configured_server.restart(server)
    status = again.admin.get_rollout("resume")
    assert status is not None
    assert (status["state"], status["step"]) == ("running", 2)
    kinds = [event["kind"] for event in again.admin.get_events(limit=20)]
    assert "rollout_resumed" in kinds
    with SteadyLoad(again.query_url, "resume") as load:
        wait_until(lambda: resumed_queries(again) > 0, 15, "the resumed split's first queries")
        again.admin.promote_rollout("resume")
    assert again.admin.get_current_model_version("resume") == "2"
    assert load.failures == []


def resumed_queries(server: ServerHandle) -> int:
    status = server.admin.get_rollout("resume") or {}
    return int(status.get("new", {}).get("queries", 0))


def cli(server: ServerHandle, *args: str) -> str:
    """`clipper ARGS` against the server; its standard output (exit status 0)."""
    command = [sys.executable, "-m", "clipper.cli", *args, *server.cli_flags()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, (result.stderr, server.admin.get_rollout(args[-1]))
    return result.stdout
