"""Quiet, honest logs (issue 21, item 9, in part): no gRPC fork-handler line however many
workers start, and a planned replica stop is an INFO line, not a warning."""

from __future__ import annotations

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
    assert "replica m:1:0 stopped" in output
