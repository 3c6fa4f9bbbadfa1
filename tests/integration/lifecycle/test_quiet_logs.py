"""Quiet, honest logs (issue 21, item 9): no gRPC fork-handler line however many workers
start, a planned replica stop is an INFO line, not a warning, and each stop or crash is
logged once, not once per part of the server that saw it (the environment build's part,
no pip ERROR line, is in tests/integration/workers/test_environments.py)."""

from __future__ import annotations

import os
from typing import Any

from tests.integration.cluster import ServerFactory, deploy, wait_until


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


def test_starting_and_stopping_replicas_logs_no_noise(configured_server: ServerFactory) -> None:
    server = configured_server("quiet")
    deploy(server, "m", feature_sum, replicas=2)
    server.admin.set_num_replicas("m", 0)
    wait_until(lambda: "replica m:1:1 stopped" in server.log_path.read_text(), 20, "the stop")

    output = server.log_path.read_text()  # the server's stdout and stderr, gRPC's included
    assert "fork_posix" not in output
    assert "skipping fork() handlers" not in output
    assert "WARNING clipper.dataplane: replica m:1" not in output
    assert output.count("replica m:1:0 stopped") == 1
    assert output.count("replica m:1:1 stopped") == 1


def pid_of_model(xs: list[Any]) -> list[int]:
    return [os.getpid() for _ in xs]


def test_a_crash_is_one_warning_and_a_shutdown_none(configured_server: ServerFactory) -> None:
    server = configured_server("crashing")
    deploy(server, "c", pid_of_model)
    pid = server.predict("c", {"input": [1.0]}).json()["output"]
    os.kill(pid, 9)
    wait_until(lambda: "replica c:1:0 exited" in server.log_path.read_text(), 20, "the crash")
    server.admin.wait_model_ready("c", "1")  # restarted

    server.stop()

    lines = server.log_path.read_text().splitlines()
    warnings = [line for line in lines if " WARNING " in line and "replica c:1:0" in line]
    assert len(warnings) == 1, warnings  # the exit, not also the lost connection
    assert "exited with code -9" in warnings[0]
    assert sum("replica c:1:0 stopped" in line for line in lines) == 1  # at the shutdown
