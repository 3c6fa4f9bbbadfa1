"""The life cycle of several query frontends (issue 26): a rolling restart loses no query,
and the frontends and replicas serve on while the control process is down, then are adopted
by the next one. Real processes throughout, under load from 8 clients (4 opening a fresh
connection per query, 4 on keep-alive connections)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from clipper.frontends.peer import ask_peer
from clipper.rpc.fanout import frontend_peer_path
from tests.integration.cluster import (
    ServerFactory,
    ServerHandle,
    deploy,
    kill_leftovers,
    pid_alive,
    wait_until,
)

CLIENTS = 8


def total(inputs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in inputs]


def frontend_stats(server: ServerHandle) -> list[dict[str, Any]]:
    """Each frontend's own stats, asked on its peer socket (no control process needed)."""
    rows = []
    for index in range(2):
        path = frontend_peer_path(server.state_dir, index)
        rows.append(asyncio.run(ask_peer(path, {"op": "stats"})))
    return rows


@dataclass
class Load:
    """Queries from `CLIENTS` threads until stopped; every answer checked."""

    server: ServerHandle
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, number: int) -> None:
        url = f"{self.server.query_url}/sum/predict"
        keep_alive = number % 2 == 1
        session = httpx.Client(timeout=30) if keep_alive else None
        value = 0.0
        while not self.stopping.is_set():
            value += 1
            try:
                if session is not None:
                    reply = session.post(url, json={"input": [value, number]})
                else:
                    reply = httpx.post(url, json={"input": [value, number]}, timeout=30)
                ok = reply.status_code == 200 and reply.json()["output"] == value + number
                outcome = "" if ok else f"{reply.status_code} {reply.text[:200]}"
            except httpx.HTTPError as exc:
                outcome = f"{'keep-alive' if keep_alive else 'fresh'}: {exc!r}"
            with self.lock:
                if outcome:
                    self.failures.append(outcome)
                else:
                    self.answered += 1
        if session is not None:
            session.close()

    def count(self) -> int:
        with self.lock:
            return self.answered


@contextmanager
def load(server: ServerHandle) -> Iterator[Load]:
    running = Load(server)
    threads = [threading.Thread(target=running.client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: running.count() > 50, 20, "the load to start")
        yield running
    finally:
        running.stopping.set()
        for thread in threads:
            thread.join(40)


def more_answers(running: Load, how_many: int, what: str) -> None:
    start = running.count()
    wait_until(lambda: running.count() >= start + how_many, 20, what)


def test_rolling_restart_fails_no_query(configured_server: ServerFactory) -> None:
    server = configured_server("rolling", frontends=2)
    deploy(server, "sum", total)
    replicas = server.replica_pids()
    before = {row["index"]: row["pid"] for row in frontend_stats(server)}

    with load(server) as running:
        started = time.monotonic()
        cli = [sys.executable, "-m", "clipper.cli", "restart", "--frontends", *server.cli_flags()]
        done = subprocess.run(cli, capture_output=True, text=True, timeout=120, check=False)
        took_s = time.monotonic() - started
        more_answers(running, 100, "answers after the restart")
    rows = server.admin.status()["frontends"]

    assert done.returncode == 0, done.stderr
    assert running.failures == [], running.failures[:5]
    after = {row["index"]: row["pid"] for row in rows}
    assert str(after[0]) in done.stdout
    assert all(after[i] != before[i] for i in before), (before, after)
    assert all(not pid_alive(pid) for pid in before.values())
    assert [row["pid"] for row in frontend_stats(server)] == [after[0], after[1]]
    assert all(row["serving"] and row["replicas"] == 1 for row in frontend_stats(server))
    assert server.replica_pids() == replicas  # no replica restarted
    assert took_s < 30


def test_frontends_and_replicas_outlive_the_control_process(
    configured_server: ServerFactory,
) -> None:
    server = configured_server("adopted", frontends=2)
    deploy(server, "sum", total)
    replicas = server.replica_pids()
    frontends = sorted(row["pid"] for row in server.admin.status()["frontends"])
    assert server.process is not None
    try:
        with load(server) as running:
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(10)
            more_answers(running, 200, "answers with the control process down")
            server.start()  # a new control process, same settings and state directory
            wait_until(lambda: _admin_answers(server), 60, "the admin API to answer again")
            more_answers(running, 100, "answers after the control process is back")
        status = server.admin.status()
        assert running.failures == [], running.failures[:5]
        assert sorted(row["pid"] for row in status["frontends"]) == frontends
        assert all(row["adopted"] and row["alive"] for row in status["frontends"])
        assert server.replica_pids() == replicas  # re-registered, not restarted
        wait_until(lambda: _replica_ready(server), 20, "the adopted replica to be ready")

        # Admin works: a change reaches both adopted frontends; a killed one is replaced.
        server.admin.add_app("second", "doubles", "-1", 1_000_000)
        server.admin.add_model_links("second", ["sum"])
        for _ in range(20):
            assert httpx.post(f"{server.query_url}/second/predict", json={"input": [1.0, 2.0]},
                              timeout=10).json()["output"] == 3.0  # fmt: skip
        assert all("second" in row["apps"] for row in frontend_stats(server))
        os.kill(frontends[0], signal.SIGKILL)
        wait_until(lambda: frontends[0] not in _frontend_pids(server), 10, "a replacement")
        assert server.replica_pids() == replicas
    finally:
        server.stop()
        kill_leftovers([*frontends, *replicas])


def _admin_answers(server: ServerHandle) -> bool:
    try:
        return httpx.get(f"{server.admin_url}/admin/ping", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _frontend_pids(server: ServerHandle) -> list[int]:
    return [row["pid"] for row in server.admin.status()["frontends"] if row["alive"]]


def _replica_ready(server: ServerHandle) -> bool:
    rows = server.admin.get_all_containers(verbose=True)
    return all(row.get("state") == "ready" for row in rows)
