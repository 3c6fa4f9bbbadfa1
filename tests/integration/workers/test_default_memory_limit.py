"""Replicas have a memory limit by default (issue 28, item 17): half of the machine unless
the cluster's `replica_memory_limit` says otherwise; a model version's own `memory_limit`
wins, 0 for none; a replica past the default is stopped and reported, naming the setting,
while the server and other models answer on. Where no cgroup can be made, a watch of the
worker's resident memory enforces the default instead of RLIMIT_AS."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from clipper.core.process_memory import machine_memory_bytes
from clipper.worker.rlimits import MEMORY_LIMIT_EXIT_CODE
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until

DEFAULT_LIMIT = 256 * 1024 * 1024


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


def hoard_600_mib(xs: list[Any]) -> list[float]:
    hoard = b"\x01" * (600 * 1024 * 1024)  # written, so resident: past a 256 MiB limit
    return [float(len(hoard) >> 20)] * len(xs)


def replica(server: ServerHandle, model: str) -> dict[str, Any]:
    replicas = server.admin.get_all_containers(verbose=True)
    return next(r for r in replicas if r["model_name"] == model)


def limit_lines(server: ServerHandle, model: str) -> list[str]:
    log = (server.state_dir / "logs" / f"{model}-1-0.log").read_text()
    return [line for line in log.splitlines() if "limit: memory" in line]


def test_without_a_setting_a_replica_gets_half_the_machine(
    configured_server: ServerFactory,
) -> None:
    server = configured_server("half")
    deploy(server, "plain", feature_sum)

    [line] = limit_lines(server, "plain")
    assert f"memory {machine_memory_bytes() // 2} bytes" in line
    assert "the cluster's default replica_memory_limit, 50%" in line
    assert server.predict("plain", {"input": [1.0, 2.0]}).json()["output"] == 3.0


def test_a_replica_past_the_default_is_stopped_and_one_with_limit_0_is_not(
    configured_server: ServerFactory,
) -> None:
    server = configured_server("capped", replica_memory_limit="256MiB")
    deploy(server, "calm", feature_sum)
    deploy(server, "hog", hoard_600_mib, slo_us=20_000_000)
    first_pid = replica(server, "hog")["pid"]
    server.worker_pids.add(first_pid)

    assert f"memory {DEFAULT_LIMIT} bytes" in limit_lines(server, "hog")[0]
    assert server.predict("hog", {"input": [1.0]}).json()["default"] is True
    wait_until(
        lambda: "memory limit exceeded" in replica(server, "hog")["last_error"],
        30,
        "the default memory limit to be reported",
    )
    last_error = replica(server, "hog")["last_error"]
    assert "the cluster's default, replica_memory_limit 268435456" in last_error
    assert "memory_limit, 0 for none" in last_error  # what to do about it
    assert server.predict("calm", {"input": [2.0, 3.0]}).json()["output"] == 5.0

    deploy(server, "unbounded", hoard_600_mib, slo_us=20_000_000, resources={"memory_limit": 0})
    server.worker_pids.add(replica(server, "unbounded")["pid"])
    reply = server.predict("unbounded", {"input": [1.0]}).json()
    assert (reply["default"], reply["output"]) == (False, 600.0), reply
    assert limit_lines(server, "unbounded") == []


def test_the_watch_stops_a_process_past_its_limit(tmp_path: Path) -> None:
    """The enforcement where no cgroup can be made, in a process of its own."""
    script = textwrap.dedent(f"""
        import time
        from clipper.worker.memory_watch import watch_resident_memory
        watch_resident_memory({DEFAULT_LIMIT}, {MEMORY_LIMIT_EXIT_CODE})
        small = b"\\x01" * (64 << 20)
        time.sleep(0.5)  # within the limit: the watch lets it be
        print("still here", flush=True)
        hoard = b"\\x01" * (600 << 20)
        time.sleep(10)
        print("not stopped", flush=True)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )

    assert done.returncode == MEMORY_LIMIT_EXIT_CODE, done.stderr
    assert done.stdout == "still here\n"
    assert "memory limit exceeded" in done.stderr
