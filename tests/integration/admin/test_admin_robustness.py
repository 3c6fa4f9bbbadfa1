"""The admin API under careless operators (issue 28, item 14): a read-only state
directory answers the JSON error shape with a code, not plain text; names and default
outputs have length limits; logs come a page at a time, never in one huge reply."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until

LINE = "x" * 1023 + "\n"


def print_3_mib(inputs: list[Any]) -> list[float]:
    """Writes 3 MiB to its log, then answers."""
    print(LINE * 3072, end="", flush=True)
    return [0.0 for _ in inputs]


def test_logs_come_a_page_at_a_time_and_whole_to_every_client(
    server: ServerHandle, tmp_path: Path
) -> None:
    deploy(server, "chatty", print_3_mib)
    assert server.predict("chatty", {"input": [1.0]}).json()["default"] is False
    on_disk = server.state_dir / "logs" / "chatty-1-0.log"
    # The worker's output reaches its log a moment after the answer: wait for all of it.
    wait_until(lambda: on_disk.stat().st_size >= 3 << 20, 30, "the 3 MiB of output on disk")
    wait_until(lambda: _steady_size(on_disk), 30, "the log to stop growing")

    page = server.admin_http("get_logs", {})
    assert page.status_code == 200
    assert len(page.content) < (1 << 20) + 64 * 1024  # one page: 1 MiB of text in all
    entries = {entry["name"]: entry for entry in page.json()["logs"]}
    assert entries["chatty-1-0.log"]["size"] == on_disk.stat().st_size

    whole = {log["name"]: log["content"] for log in server.admin.get_logs()}
    assert whole["chatty-1-0.log"].count(LINE) >= 3072
    [saved] = [p for p in server.admin.save_logs(tmp_path) if p.name == "chatty-1-0.log"]
    assert saved.read_bytes() == on_disk.read_bytes()[: saved.stat().st_size]
    assert saved.stat().st_size >= 3 << 20

    printed = subprocess.run(
        [sys.executable, "-m", "clipper.cli", "logs", "--model", "chatty", *server.cli_flags()],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("==> chatty-1-0.log <==\n")
    assert printed.stdout.count(LINE) >= 3072


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    return module_server("careless")


def test_a_state_directory_that_takes_no_writes_answers_a_json_error(
    configured_server: ServerFactory,
) -> None:
    """As when the disk is full or the directory read-only: the server may write nothing
    (its file size limit set to one byte from outside; root ignores file modes)."""
    full = configured_server("disk-full")
    assert full.process is not None
    pid = full.process.pid
    before = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, before[1]))
    try:
        response = full.admin_http("add_app", {
            "name": "written", "input_type": "doubles", "default_output": "-1",
            "latency_slo_micros": 100_000,
        })  # fmt: skip
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, before)

    assert response.status_code == 500
    body = response.json()
    assert (body["code"], body["error"]) == ("InternalError", "Internal error")
    assert body["cause"].startswith("add_app failed: ")
    assert full.admin.get_application("written") is None  # nothing half-written
    assert full.admin_http("get_all_applications", {}).status_code == 200  # serves on


def test_a_name_over_63_characters_is_refused(server: ServerHandle) -> None:
    response = server.admin_http("add_app", {
        "name": "a" * 64, "input_type": "doubles", "default_output": "-1",
        "latency_slo_micros": 100_000,
    })  # fmt: skip

    assert (response.status_code, response.json()["code"]) == (400, "InvalidName")
    assert "at most 63 characters" in response.json()["cause"]


def test_a_huge_default_output_is_refused(server: ServerHandle) -> None:
    response = server.admin_http("add_app", {
        "name": "huge-default", "input_type": "doubles", "default_output": "x" * 70_000,
        "latency_slo_micros": 100_000,
    })  # fmt: skip

    assert (response.status_code, response.json()["code"]) == (400, "InvalidRequest")


def _steady_size(path: Path) -> bool:
    size = path.stat().st_size
    time.sleep(0.2)
    return path.stat().st_size == size
