"""Processes a model forks do not outlive their replica (issue 28, item 6): stopping the
replica stops its whole process group, and a server started after a `kill -9` of the one
before kills what the earlier workers left behind."""

from __future__ import annotations

from typing import Any

from tests.integration.cluster import ServerFactory, deploy, pid_alive, wait_until

GIVE_UP_S = 20.0


def fork_a_sleeper(xs: list[Any]) -> list[int]:
    """Starts, once, a child that would sleep for five minutes; answers its pid."""
    import subprocess

    if not hasattr(fork_a_sleeper, "child"):
        fork_a_sleeper.child = subprocess.Popen(["sleep", "300"])  # type: ignore[attr-defined]
    return [fork_a_sleeper.child.pid for _ in xs]  # type: ignore[attr-defined]


def test_stopping_a_replica_stops_what_its_model_forked(configured_server: ServerFactory) -> None:
    server = configured_server("forks")
    deploy(server, "forker", fork_a_sleeper)
    child = server.predict("forker", {"input": [1.0]}).json()["output"]
    assert pid_alive(child)

    server.admin.set_num_replicas("forker", 0)

    wait_until(lambda: not pid_alive(child), GIVE_UP_S, f"the model's child {child} to go")


def test_a_new_server_kills_what_the_workers_of_a_killed_one_left(
    configured_server: ServerFactory,
) -> None:
    server = configured_server("forks-kill")
    deploy(server, "forker", fork_a_sleeper)
    child = server.predict("forker", {"input": [1.0]}).json()["output"]
    server.kill()  # its workers die with it (PDEATHSIG); the model's child would not
    assert pid_alive(child)

    again = configured_server.restart(server)

    wait_until(lambda: not pid_alive(child), GIVE_UP_S, f"the leftover {child} to go")
    assert (
        "killed 1 processes left by the workers of an earlier server" in again.log_path.read_text()
    )
