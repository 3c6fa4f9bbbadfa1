"""A local replica's thread count: its CPUs rounded up, or the setting, within the machine."""

from __future__ import annotations

from clipper.core.resources import ResourceRequest
from clipper.placement.threads import THREAD_VARIABLES, replica_threads, thread_environment


def test_a_replica_runs_as_many_threads_as_the_cpus_it_takes() -> None:
    assert replica_threads(ResourceRequest(), 0, 16) == 1
    assert replica_threads(ResourceRequest.parse({"num_cpus": 4}), 0, 16) == 4
    assert replica_threads(ResourceRequest.parse({"num_cpus": 0.25}), 0, 16) == 1
    assert replica_threads(ResourceRequest.parse({"cpu_share": 0.5}), 0, 16) == 1
    assert replica_threads(ResourceRequest.parse({"num_cpus": 2.5}), 0, 16) == 3


def test_the_setting_wins_and_the_machine_caps() -> None:
    assert replica_threads(ResourceRequest.parse({"num_cpus": 4}), 2, 16) == 2
    assert replica_threads(ResourceRequest.parse({"num_cpus": 8}), 0, 2) == 2
    assert replica_threads(ResourceRequest(), 6, 4) == 4


def test_variables_the_server_has_are_passed_on_as_they_are() -> None:
    assert thread_environment(2, {}) == dict.fromkeys(THREAD_VARIABLES, "2")
    added = thread_environment(1, {"OMP_NUM_THREADS": "8", "HOME": "/root"})
    assert "OMP_NUM_THREADS" not in added
    assert added["MKL_NUM_THREADS"] == "1"
