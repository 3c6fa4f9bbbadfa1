"""`clipper autoscale` and autoscaling across deploys: a new version deployed without a
count follows the current one's count and autoscaling; the version it replaced stays at
zero replicas (the autoscaler leaves parked versions alone)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clipper.artifacts.python import closure_artifact
from clipper_admin import ClipperException
from clipper_admin.deployers.python import deploy_python_closure
from tests.integration.clipper_admin_cluster import admin_cluster
from tests.integration.cluster import ServerHandle, deploy, metric, wait_until


def answers(value: float) -> Any:
    def predict(inputs: list[Any]) -> list[float]:
        return [value] * len(inputs)

    return predict


def clipper(server: ServerHandle, *args: str, ok: bool = True) -> str:
    command = [sys.executable, "-m", "clipper.cli", *args, *server.cli_flags()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode == 0) == ok, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_the_autoscale_command_and_scale_refused_meanwhile(configured_server: Any) -> None:
    server = configured_server(autoscaler_interval_s=0.25)
    deploy(server, "cli-auto", answers(1.0), replicas=1, resources={"num_cpus": 0.5})
    out = clipper(server, "autoscale", "cli-auto", "--min", "2", "--max", "3",
                  "--setting", "downscale_delay_s=600")  # fmt: skip
    assert "cli-auto:1 is autoscaled between 2 and 3 replicas" in out
    info = server.admin.get_model("cli-auto", "1")
    assert info is not None
    assert info["autoscaling"]["downscale_delay_s"] == 600.0
    # below min_replicas: raised to it at the next interval, with an event saying why
    wait_until(lambda: server.admin.get_num_replicas("cli-auto") == 2, 10, "min_replicas")
    [event] = [e for e in server.admin.get_events() if e["kind"] == "autoscaled"]
    assert event["detail"]["reason"] == "scaled cli-auto:1 from 1 to 2: below min_replicas"

    refused = clipper(server, "scale", "cli-auto", "1", ok=False)
    assert "is autoscaled between 2 and 3 replicas" in refused
    assert "turn autoscaling off" in refused
    assert "no longer autoscaled" in clipper(server, "autoscale", "cli-auto", "--off")
    clipper(server, "scale", "cli-auto", "1")
    assert server.admin.get_num_replicas("cli-auto") == 1
    assert "--max" in clipper(server, "autoscale", "cli-auto", ok=False)


def test_a_new_version_follows_the_autoscaled_count_and_settings(configured_server: Any) -> None:
    server = configured_server(autoscaler_interval_s=0.25)
    autoscaling = {"min_replicas": 1, "max_replicas": 3, "downscale_delay_s": 600.0}
    deploy(server, "follow", answers(1.0), replicas=2, resources={"num_cpus": 0.5},
           autoscaling=autoscaling)  # fmt: skip

    info = server.admin.deploy_artifact("follow", "2", "doubles", closure_artifact(answers(2.0)))

    assert (info["num_replicas"], info["is_current_version"]) == (2, True)
    assert info["autoscaling"]["max_replicas"] == 3
    wait_until(
        lambda: metric(server, "clipper_autoscaler_current_replicas", version="2") == 2,
        10, "the autoscaler to look at follow:2",
    )  # fmt: skip
    assert server.admin.get_num_replicas("follow", "1") == 0  # parked, not raised to min
    assert server.predict("follow", {"input": [1.0]}).json()["output"] == 2.0


def test_clipper_admin_deploys_autoscaled_and_turns_it_off(tmp_path: Path) -> None:
    with admin_cluster(tmp_path / "state", "autoscale-admin") as conn:
        deploy_python_closure(conn, "admin-auto", 1, "doubles", answers(1.0), num_replicas=1,
                              resources={"num_cpus": 0.5},
                              autoscaling={"min_replicas": 1, "max_replicas": 2})  # fmt: skip
        info = conn.get_model_info("admin-auto", 1)
        assert info is not None
        assert info["autoscaling"]["max_replicas"] == 2
        with pytest.raises(ClipperException, match="autoscaled between 1 and 2"):
            conn.set_num_replicas("admin-auto", 2)
        assert conn.set_autoscaling("admin-auto", None)["autoscaling"] is None
        conn.set_num_replicas("admin-auto", 2)
        assert conn.get_num_replicas("admin-auto") == 2
