"""Replicas follow the current version (issue 21, item 11): a deploy without a replica
count starts as many replicas as the current version has, and the version it replaces is
scaled to zero once the new one is current; an explicit count wins; a rollback brings the
old version's replicas back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clipper.artifacts.python import closure_artifact
from tests.integration.cluster import ServerHandle, deploy, wait_until

pytestmark = pytest.mark.integration


def answers(value: float) -> Any:
    def predict(inputs: list[Any]) -> list[float]:
        return [value] * len(inputs)

    return predict


def running(server: ServerHandle, model: str, version: str) -> int:
    """Replicas of `model:version` the server reports (any state)."""
    replicas = server.admin.get_all_containers(verbose=True)
    server.replica_pids()  # remembered, so the fixture reaps them
    return sum(1 for r in replicas if (r["model_name"], r["model_version"]) == (model, version))


def output(server: ServerHandle, app: str) -> Any:
    reply = server.predict(app, {"input": [1.0]}).json()
    assert reply["default"] is False, reply
    return reply["output"]


def test_a_deploy_without_a_count_follows_the_current_version(server: ServerHandle) -> None:
    deploy(server, "follow", answers(1.0))
    server.admin.set_num_replicas("follow", 3)
    server.admin.wait_model_ready("follow", "1", 60)

    info = server.admin.deploy_artifact("follow", "2", "doubles", closure_artifact(answers(2.0)))

    assert (info["num_replicas"], info["ready_replicas"], info["is_current_version"]) == (
        3,
        3,
        True,
    )
    assert output(server, "follow") == 2.0
    old = server.admin.get_model("follow", "1")
    assert old is not None
    assert (old["num_replicas"], old["is_current_version"]) == (0, False)
    wait_until(lambda: running(server, "follow", "1") == 0, 30, "version 1 scaled to zero")
    assert running(server, "follow", "2") == 3

    explicit = server.admin.deploy_artifact(
        "follow", "3", "doubles", closure_artifact(answers(3.0)), num_replicas=1
    )
    assert (explicit["num_replicas"], explicit["ready_replicas"]) == (1, 1)
    assert output(server, "follow") == 3.0
    wait_until(lambda: running(server, "follow", "2") == 0, 30, "version 2 scaled to zero")

    # A rollback starts the version it goes back to with the current version's count and
    # leaves the version it leaves running, so that it can be undone at once.
    rolled_back = server.admin.set_model_version("follow", "2")
    assert (rolled_back["num_replicas"], rolled_back["ready_replicas"]) == (1, 1)
    assert output(server, "follow") == 2.0
    assert server.admin.get_num_replicas("follow", "3") == 1
    assert server.admin.get_num_replicas("follow", "1") == 0


def test_the_cli_deploy_follows_unless_given_replicas(server: ServerHandle, tmp_path: Path) -> None:
    model_file = tmp_path / "model.py"
    model_file.write_text("def predict(xs):\n    return [7.0 for _ in xs]\n")

    def clipper(*args: str) -> str:
        command = [sys.executable, "-m", "clipper.cli", *args, *server.cli_flags()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result.stdout

    deploy_args = ("deploy", "cli-follow", "--file", str(model_file), "--input-type", "doubles")
    assert "Deployed cli-follow:1 with 1 replica(s)" in clipper(*deploy_args)
    clipper("scale", "cli-follow", "2")
    assert "Deployed cli-follow:2 with 2 replica(s)" in clipper(*deploy_args)
    assert server.admin.get_num_replicas("cli-follow", "1") == 0
    assert "Deployed cli-follow:3 with 1 replica(s)" in clipper(*deploy_args, "--replicas", "1")
    assert server.admin.get_num_replicas("cli-follow", "3") == 1
