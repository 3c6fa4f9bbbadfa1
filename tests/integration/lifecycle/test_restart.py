"""Unplanned restarts: a SIGKILLed server loses nothing, a SIGKILLed worker is replaced."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from tests.integration.cluster import (
    ServerFactory,
    ServerHandle,
    deploy,
    pid_alive,
    wait_pids_exit,
    wait_until,
)

pytestmark = pytest.mark.integration


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


def shout(xs: list[str]) -> list[str]:
    return [x.upper() + "!" for x in xs]


def always_two(xs: list[Any]) -> list[float]:
    return [2.0 for _ in xs]


def registry_view(server: ServerHandle) -> dict[str, Any]:
    """Everything the registry holds, as the admin API lists it."""
    return {
        "apps": server.admin.get_all_applications(verbose=True),
        "models": server.admin.get_all_models(verbose=True),
        "current": {
            name: server.admin.get_current_model_version(name) for name in ("sum", "words")
        },
    }


def build_cluster(server: ServerHandle) -> None:
    """Apps `sum` (two versions, rolled back to 1), `words` (2 replicas), `alias`, `empty`."""
    deploy(server, "sum", feature_sum)
    deploy(server, "sum", always_two, version="2", link=False)
    server.admin.set_model_version("sum", "1")
    deploy(server, "words", shout, input_type="strings", replicas=2)
    for name, default in (("alias", "-2"), ("empty", "-3")):
        server.admin.add_app(name, "doubles", default_output=default, latency_slo_micros=1_000_000)
    server.admin.add_model_links("alias", ["sum"])


def test_a_sigkilled_server_restarts_with_everything_and_its_workers_exit(
    configured_server: ServerFactory,
) -> None:
    first = configured_server("restart")
    build_cluster(first)
    before = registry_view(first)
    assert before["current"] == {"sum": "1", "words": "1"}
    old_workers = set(first.replica_pids())
    assert len(old_workers) == 4
    first.kill()
    wait_pids_exit(old_workers, 20, "a worker of the killed server")

    second = configured_server.restart(first)  # same state directory, fresh ports

    # /readyz covers the versions apps use; sum:2 is only registered, so wait for it
    # too before comparing views that include ready replica counts.
    for model, version in (("sum", "1"), ("sum", "2"), ("words", "1")):
        second.admin.wait_model_ready(model, version)
    assert registry_view(second) == before
    assert second.admin.get_linked_models("alias") == ["sum"]
    assert second.admin.get_linked_models("empty") == []
    assert second.predict("sum", {"input": [1.0, 2.0]}).json()["output"] == 3.0
    assert second.predict("alias", {"input": [2.0, 2.0]}).json()["output"] == 4.0
    pinned = second.predict("sum", {"input": [1.0, 2.0], "version": "2"}).json()
    assert pinned["output"] == 2.0
    assert second.predict("words", {"input": "hi"}).json()["output"] == "HI!"
    empty = second.predict("empty", {"input": [1.0]}).json()
    assert (empty["output"], empty["default"]) == (-3, True)
    new_workers = set(second.replica_pids())
    assert len(new_workers) == 4
    assert not new_workers & old_workers


def test_a_sigkilled_worker_is_replaced_and_queries_answer_again(server: ServerHandle) -> None:
    deploy(server, "crashy", feature_sum)
    assert server.predict("crashy", {"input": [1.0, 1.0]}).json()["output"] == 2.0
    [old_pid] = server.replica_pids()
    os.kill(old_pid, signal.SIGKILL)
    wait_pids_exit([old_pid], 10, "the killed worker")

    def replaced() -> dict[str, Any] | None:
        replica = server.admin.get_container("crashy", "1", replica_id=0)
        fresh = replica and replica["pid"] not in (None, old_pid) and replica["connected"]
        return replica if fresh and replica["state"] == "ready" else None

    replica = wait_until(replaced, 20, "the replica to be restarted")
    server.replica_pids()
    assert pid_alive(replica["pid"])
    reply = server.predict("crashy", {"input": [2.0, 3.0]}).json()
    assert (reply["output"], reply["default"]) == (5.0, False)
    assert server.admin.get_num_replicas("crashy") == 1
