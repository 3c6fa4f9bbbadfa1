"""`clipper update-app`, `set-cache`, `set-batching` and `delete-version` (issue 21, item 8),
run as subprocesses against real servers; each change checked through the admin API or a
query."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from tests.integration.cluster import (
    ServerFactory,
    ServerHandle,
    deploy,
    pid_alive,
    wait_pids_exit,
)

pytestmark = pytest.mark.integration


def slow_sum(xs: list[Any]) -> list[float]:
    """Answers in 0.3 s: in time for a 5 s SLO, never for a 1 ms one."""
    time.sleep(0.3)
    return [float(sum(x)) for x in xs]


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


def clipper(server: ServerHandle, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m clipper.cli ARGS <the server's cluster flags>`."""
    command = [sys.executable, "-m", "clipper.cli", *args, *server.cli_flags()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if ok:
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error of a failed command: exit status 1, one `error: ...` line, no traceback."""
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def shared(module_server: ServerFactory) -> ServerHandle:
    return module_server("changes")


def test_update_app_takes_effect_at_once_and_survives_a_restart(
    configured_server: ServerFactory,
) -> None:
    server = configured_server("update-app")
    deploy(server, "slowapp", slow_sum, slo_us=5_000_000)
    assert server.predict("slowapp", {"input": [1.0, 2.0]}).json()["output"] == 3.0
    cache = clipper(server, "set-cache", "off", "--app", "slowapp").stdout
    update = clipper(
        server, "update-app", "slowapp", "--slo-micros", "1000", "--default-output", "late"
    ).stdout

    assert cache.strip() == "App 'slowapp': prediction cache off"
    assert update.strip() == "App 'slowapp': latency SLO 1000 us, default output 'late'"
    # The same input again: answered from the cache if set-cache had not turned it off.
    reply = server.predict("slowapp", {"input": [1.0, 2.0]}).json()
    assert (reply["default"], reply["output"]) == (True, "late")
    info = server.admin.get_application("slowapp")
    assert info is not None
    assert (info["latency_slo_micros"], info["default_output"]) == (1000, "late")
    assert info["cache_enabled"] is False

    again = configured_server.restart(server)
    again.admin.wait_model_ready("slowapp", "1")
    after = again.predict("slowapp", {"input": [4.0, 5.0]}).json()
    assert (after["default"], after["output"]) == (True, "late")
    restarted = again.admin.get_application("slowapp")
    assert restarted is not None
    kept = ("latency_slo_micros", "default_output", "cache_enabled")
    assert {key: restarted[key] for key in kept} == {"latency_slo_micros": 1000,
                                                     "default_output": "late",
                                                     "cache_enabled": False}  # fmt: skip


def test_update_app_keeps_what_it_is_not_given(shared: ServerHandle) -> None:
    shared.admin.add_app("kept", "doubles", default_output="-1", latency_slo_micros=20_000)
    clipper(shared, "update-app", "kept", "--default-output", "0.5")

    info = shared.admin.get_application("kept")
    assert info is not None
    assert (info["latency_slo_micros"], info["default_output"]) == (20_000, "0.5")
    assert shared.predict("kept", {"input": [1.0]}).json()["output"] == 0.5  # no model: default


def test_register_app_and_update_app_set_the_priority_class(shared: ServerHandle) -> None:
    clipper(shared, "register-app", "ranked", "--input-type", "doubles", "--priority", "4")
    assert shared.admin.get_application("ranked")["priority"] == 4  # type: ignore[index]

    clipper(shared, "update-app", "ranked", "--priority", "1")

    info = shared.admin.get_application("ranked")
    assert info is not None
    assert (info["priority"], info["latency_slo_micros"]) == (1, 100_000)
    refused = one_line_error(clipper(shared, "update-app", "ranked", "--priority", "12", ok=False))
    assert "priority must be an integer from 0 to 9, got 12" in refused


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kept", "--slo-micros", "0"], "latency_slo_micros must be a positive integer"),
        (["no-such-app", "--slo-micros", "10"], "no-such-app"),
        (["kept"], "give --slo-micros or --default-output"),
        (["kept", "--default-output", "x" * 70_000], "default_output is over 65536 bytes"),
    ],
)
def test_update_app_refusals_are_one_line(
    shared: ServerHandle, args: list[str], message: str
) -> None:
    if shared.admin.get_application("kept") is None:
        shared.admin.add_app("kept", "doubles", default_output="-1", latency_slo_micros=20_000)
    assert message in one_line_error(clipper(shared, "update-app", *args, ok=False))
    assert shared.admin.get_application("kept")["latency_slo_micros"] == 20_000  # type: ignore[index]


def test_set_batching_changes_only_what_it_is_given(shared: ServerHandle) -> None:
    deploy(shared, "batched", feature_sum)
    first = clipper(shared, "set-batching", "batched", "--batch-size", "4", "--max-in-flight", "2")
    second = clipper(shared, "set-batching", "batched", "--version", "1",
                     "--wait-timeout-micros", "500")  # fmt: skip

    assert first.stdout.strip() == "batched:1: batch size 4, wait 0 us, 2 batch(es) in flight"
    assert second.stdout.strip() == "batched:1: batch size 4, wait 500 us, 2 batch(es) in flight"
    info = shared.admin.get_model("batched", "1")
    assert info is not None
    assert (info["batch_size"], info["batch_wait_timeout_micros"], info["max_in_flight"]) == (
        4, 500, 2,
    )  # fmt: skip
    assert shared.predict("batched", {"input": [1.0, 2.0]}).json()["output"] == 3.0
    nothing = one_line_error(clipper(shared, "set-batching", "batched", ok=False))
    assert "give --batch-size" in nothing
    unknown = one_line_error(clipper(shared, "set-batching", "nope", "--batch-size", "2", ok=False))
    assert "nope" in unknown


def test_set_cache_of_a_model(shared: ServerHandle) -> None:
    deploy(shared, "uncached", feature_sum)
    out = clipper(shared, "set-cache", "off", "--model", "uncached").stdout

    assert out.strip() == "Model 'uncached': prediction cache off"
    assert shared.admin.get_model("uncached", "1")["cache_enabled"] is False  # type: ignore[index]
    clipper(shared, "set-cache", "on", "--model", "uncached")
    assert shared.admin.get_model("uncached", "1")["cache_enabled"] is True  # type: ignore[index]
    neither = clipper(shared, "set-cache", "on", ok=False)
    assert neither.returncode == 2  # argparse: one of --app and --model is required
    assert "--app" in neither.stderr


def test_delete_version_stops_its_replicas_and_unregisters_it(shared: ServerHandle) -> None:
    deploy(shared, "doomed", feature_sum)
    deploy(shared, "doomed", feature_sum, version="2")
    pids = [
        replica["pid"] for replica in shared.admin.get_all_containers(verbose=True)
        if replica["model_name"] == "doomed" and replica["model_version"] == "1"
    ]  # fmt: skip
    out = clipper(shared, "delete-version", "doomed", "1").stdout

    assert out.strip() == "Deleted doomed:1"
    assert shared.admin.get_model("doomed", "1") is None
    assert [model["model_version"] for model in shared.admin.get_all_models(verbose=True)
            if model["model_name"] == "doomed"] == ["2"]  # fmt: skip
    assert len(pids) == 1
    wait_pids_exit(pids, 15, "the deleted version's replica")
    assert not pid_alive(pids[0])
    assert shared.predict("doomed", {"input": [1.0, 2.0]}).json()["output"] == 3.0
    again = one_line_error(clipper(shared, "delete-version", "doomed", "1", ok=False))
    assert "doomed" in again
