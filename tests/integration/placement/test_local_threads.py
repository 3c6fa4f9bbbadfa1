"""What a local worker's numeric libraries are told to run: its share of the CPUs (one by
default, its `num_cpus`), or the `worker_threads` setting; what the server's environment
sets itself is passed on."""

from __future__ import annotations

import os
from typing import Any

import pytest

from clipper.placement.threads import THREAD_VARIABLES
from tests.integration.cluster import ServerFactory, deploy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def thread_settings(inputs: list[Any]) -> list[str]:
    return [",".join(os.environ.get(name, "unset") for name in THREAD_VARIABLES) for _ in inputs]


def expected(threads: int) -> str:
    """What a worker sees: `threads`, except where this environment (the server's) sets one."""
    return ",".join(os.environ.get(name, str(threads)) for name in THREAD_VARIABLES)


def test_replicas_run_their_share_of_threads(configured_server: ServerFactory) -> None:
    server = configured_server()
    deploy(server, "default", thread_settings)
    deploy(server, "pair", thread_settings, resources={"num_cpus": 2})

    pair = min(2, os.cpu_count() or 1)
    assert server.predict("default", {"input": [1.0]}).json()["output"] == expected(1)
    assert server.predict("pair", {"input": [1.0]}).json()["output"] == expected(pair)


def test_the_worker_threads_setting_fixes_the_count(configured_server: ServerFactory) -> None:
    server = configured_server(worker_threads=1)
    deploy(server, "pair", thread_settings, resources={"num_cpus": 2})

    assert server.predict("pair", {"input": [1.0]}).json()["output"] == expected(1)
