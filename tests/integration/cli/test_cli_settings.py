"""How the `clipper` command finds its cluster (issue 21, item 8): the cluster flags before
or after the command's name, and the config file, run as subprocesses against real servers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.cluster import (
    ServerFactory,
    ServerHandle,
    free_port,
    kill_leftovers,
    wait_pids_exit,
)

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
    assert result.stdout.splitlines()[0].split() == ["cluster_name", "flags"]


# -- the config file ---------------------------------------------------------------------


def test_a_detached_server_takes_its_settings_from_the_config_file_alone(tmp_path: Path) -> None:
    query_port, admin_port = free_port(), free_port()
    path = tmp_path / "clipper.toml"
    path.write_text(
        'cluster_name = "from-file"\nstate_dir = "state"\nmax_body_bytes = 2048\n'
        f"query_port = {query_port}\nadmin_port = {admin_port}\n"
        f"rpc_port = {free_port()}\ngrpc_port = {free_port()}\n"
    )
    started = clipper("start", "--detach", "--config", str(path))
    match = re.search(r"started \(pid (\d+)\)", started.stdout)
    assert match is not None, started.stdout + started.stderr
    pid = int(match.group(1))
    try:
        by_variable = clipper("status", env={**os.environ, "CLIPPER_CONFIG": str(path)})
        register = clipper("--config", str(path), "register-app", "sized", "--input-type=doubles")
        small = httpx.post(f"http://127.0.0.1:{query_port}/sized/predict",
                           json={"input": [1.0]}, timeout=30)  # fmt: skip
        large = httpx.post(f"http://127.0.0.1:{query_port}/sized/predict",
                           json={"input": [1.0] * 1000}, timeout=30)  # fmt: skip

        assert by_variable.returncode == 0, by_variable.stderr
        status = dict(line.split(None, 1) for line in by_variable.stdout.splitlines() if line)
        assert status["cluster_name"] == "from-file"
        assert status["state_dir"] == str(tmp_path / "state")  # relative to the file
        assert register.returncode == 0, register.stderr
        assert small.json()["default"] is True  # no model linked: answered, under the limit
        assert large.status_code == 413  # max_body_bytes from the file reached the server
    finally:
        clipper("stop", "--config", str(path))
        with contextlib.suppress(TimeoutError):
            wait_pids_exit([pid], 20, "the server")
        kill_leftovers([pid])


def test_a_bad_key_fails_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "clipper.toml"
    path.write_text(f'state_dir = "state"\nadmin_prot = {free_port()}\n')
    result = clipper("start", "--detach", "--config", str(path))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: config file {path}: unknown key 'admin_prot' (did you mean 'admin_port'?)"
    ]
    assert not (tmp_path / "state").exists()
