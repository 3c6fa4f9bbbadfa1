"""How the `clipper` command finds its cluster (issue 21, item 8): the cluster flags before
or after the command's name, run as subprocesses against real servers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.cluster import ServerFactory, ServerHandle

pytestmark = pytest.mark.integration


def clipper(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m clipper.cli ARGS`, exactly as given."""
    command = [sys.executable, "-m", "clipper.cli", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=env
    )


@pytest.fixture(scope="module")
def shared(module_server: ServerFactory) -> ServerHandle:
    server = module_server("flags")
    server.admin.add_app("placed", "doubles", default_output="-1", latency_slo_micros=10_000)
    return server


@pytest.mark.parametrize("position", ["before", "after", "split"])
def test_cluster_flags_before_or_after_the_command(shared: ServerHandle, position: str) -> None:
    flags = shared.cli_flags()
    half = len(flags) // 2 // 2 * 2  # whole flag-value pairs
    argv = {
        "before": [*flags, "apps", "--json"],
        "after": ["apps", "--json", *flags],
        "split": [*flags[:half], "apps", "--json", *flags[half:]],
    }[position]
    result = clipper(*argv)

    assert result.returncode == 0, result.stderr
    assert [app["name"] for app in json.loads(result.stdout)] == ["placed"]


def test_a_flag_after_the_command_wins(shared: ServerHandle) -> None:
    wrong_port = ["--admin-port", "1"]  # nothing answers there
    result = clipper(*wrong_port, "status", *shared.cli_flags())

    assert result.returncode == 0, result.stderr
    assert "cluster_name  flags" in result.stdout
