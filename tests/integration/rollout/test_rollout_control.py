"""Pausing and resuming a canary rollout (issue 23): a paused rollout keeps its split and
its step's time left, is not judged and does not advance, across a restart too; and the
metrics of a running rollout on /metrics."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from benchmarks.steady_load import SteadyLoad
from clipper.core.exceptions import Conflict
from tests.integration.cluster import ServerHandle, deploy, metric, wait_until
from tests.integration.rollout.test_rollouts import cli, start
from tests.integration.rollout.versions import answers, ended

pytestmark = pytest.mark.integration

NO_LATENCY = {"max_p50_ratio": None, "max_p99_ratio": None}
"""A fresh replica's first queries are slow, what a step of a few seconds cannot amortise."""


def plan(first_s: float) -> dict[str, Any]:
    """Half the traffic for `first_s`, then all of it for a second."""
    steps = [{"share": 0.5, "duration_s": first_s}, {"share": 1.0, "duration_s": 1.0}]
    return {"shadow_s": 0, "steps": steps, "min_queries": 10, "checks": NO_LATENCY}


def status_of(server: ServerHandle, model: str) -> dict[str, Any]:
    status = server.admin.get_rollout(model)
    assert status is not None
    return status


def test_a_paused_rollout_holds_its_step_and_resume_goes_on(server: ServerHandle) -> None:
    deploy(server, "held", answers(1.0))
    with SteadyLoad(server.query_url, "held", threads=4) as load:
        start(server, "held", "2", answers(2.0), **plan(2.0))
        paused = server.admin.pause_rollout("held")
        assert (paused["state"], paused["paused"], paused["step"]) == ("running", True, 1)
        with pytest.raises(Conflict, match="paused already"):
            server.admin.pause_rollout("held")
        wait_until(lambda: "new" in status_of(server, "held"), 10, "the split")
        time_left = status_of(server, "held")["time_left_s"]
        seen = load.outputs[2.0]
        time.sleep(3.0)  # past the step's 2 s: a running rollout would have advanced
        status = status_of(server, "held")
        assert (status["state"], status["step"], status["paused"]) == ("running", 1, True)
        assert status["time_left_s"] == pytest.approx(time_left, abs=0.01)  # its clock stopped
        assert load.outputs[2.0] > seen  # the split stays: the new version still answers
        assert "running, paused, step 1 of 2 (50%)" in cli(server, "rollout", "status", "held")

        resumed = cli(server, "rollout", "resume", "held")
        assert "running, step" in resumed
        with pytest.raises(Conflict, match="not paused"):
            server.admin.resume_rollout("held")
        status = ended(server, "held", 10)
    assert status["state"] == "promoted", status
    assert load.failures == []
    events = [e for e in server.admin.get_events(limit=30)
              if e["kind"] in ("rollout_paused", "rollout_resumed")]  # fmt: skip
    assert [e["kind"] for e in events] == ["rollout_paused", "rollout_resumed"]
    assert all(e["detail"]["by"] == "operator" and e["detail"]["step"] == 1 for e in events)


def test_a_paused_rollout_stays_paused_across_a_restart(configured_server: Any) -> None:
    server = configured_server("paused")
    deploy(server, "kept", answers(1.0))
    start(server, "kept", "2", answers(1.0), **plan(2.0))
    time_left = server.admin.pause_rollout("kept")["time_left_s"]
    server.kill()
    again = configured_server.restart(server)
    with SteadyLoad(again.query_url, "kept", threads=4) as load:
        wait_until(lambda: "new" in status_of(again, "kept"), 15, "the split after the restart")
        wait_until(lambda: status_of(again, "kept")["new"]["queries"] > 0, 10, "canary queries")
        time.sleep(2.5)  # past the step's 2 s
        status = status_of(again, "kept")
        assert (status["state"], status["step"], status["paused"]) == ("running", 1, True)
        assert status["time_left_s"] == pytest.approx(time_left, abs=0.01)
        again.admin.resume_rollout("kept")
        status = ended(again, "kept", 10)
    assert status["state"] == "promoted", status
    assert again.admin.get_current_model_version("kept") == "2"
    assert load.failures == []


def test_a_running_rollout_is_on_metrics(server: ServerHandle) -> None:
    deploy(server, "watched", answers(1.0))
    labels = {"model": "watched", "version": "2"}
    with SteadyLoad(server.query_url, "watched", threads=4, reward=lambda output: 1.0):
        start(server, "watched", "2", answers(1.0), **plan(15.0))  # 3 s of warm-up
        # until it ends, each round of the loop starts the windows afresh
        wait_until(lambda: status_of(server, "watched").get("time_left_s", 15) < 11.5, 10,
                   "the step's warm-up to end")  # fmt: skip
        error_rate = {**labels, "check": "max_error_rate"}
        wait_until(lambda: metric(server, "clipper_rollout_check_passed", **error_rate) == 1,
                   10, "the error-rate check judged on /metrics")  # fmt: skip
        assert metric(server, "clipper_rollout_step", **labels) == 1
        assert metric(server, "clipper_rollout_share", **labels) == 0.5
        assert metric(server, "clipper_rollout_paused", **labels) == 0
        assert metric(server, "clipper_rollout_window_queries", **labels, side="new") >= 10
        assert metric(server, "clipper_rollout_check_limit", **error_rate) == 0.01
        feedback = {**labels, "side": "new"}
        wait_until(lambda: metric(server, "clipper_rollout_window_feedback", **feedback) > 0,
                   10, "feedback on the new version's answers on /metrics")  # fmt: skip
        page = httpx.get(f"{server.query_url}/metrics", timeout=10).text
        for side in ("new", "current"):  # an error rate of 0 is there, not absent
            key = f'check="max_error_rate",model="watched",side="{side}",version="2"'
            assert f"clipper_rollout_check_value{{{key}}} 0.0" in page
        server.admin.pause_rollout("watched")
        assert metric(server, "clipper_rollout_paused", **labels) == 1
        server.admin.abort_rollout("watched")
    page = httpx.get(f"{server.query_url}/metrics", timeout=10).text
    assert "clipper_rollout_step{" not in page  # an ended rollout leaves the page
