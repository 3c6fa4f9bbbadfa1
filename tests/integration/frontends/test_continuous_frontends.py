"""Continuous batching behind two query frontends (issues 24 and 26): a step model's running
batch holds the queries of both frontends, and each frontend gets its own queries' pieces.

A query's frontend is read from its query id (frontend i of N numbers its answers i+1,
i+1+N, ...); fresh connections are spread over the frontends by the kernel, so a round in
which every query went to one frontend is tried again (at most three rounds).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy
from tests.integration.query.test_continuous_batching import LoggedSteps, pieces_of, stream_all

pytestmark = pytest.mark.integration

STREAMS, PIECES = 8, 12


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("continuous-frontends") / "steps"


@pytest.fixture(scope="module")
def server(module_server: ServerFactory, log: Path) -> ServerHandle:
    handle = module_server("continuous-frontends", frontends=2)
    deploy(handle, "steps", LoggedSteps(str(log)), slo_us=5_000_000)
    return handle


def one_round(server: ServerHandle, first_label: int) -> list[list[Any]]:
    """STREAMS streams at once, each on its own connection (so either frontend)."""
    results: list[list[Any]] = [[] for _ in range(STREAMS)]

    def run(index: int) -> None:
        results[index] = stream_all(server, "steps", [first_label + index, PIECES])

    threads = [threading.Thread(target=run, args=(index,)) for index in range(STREAMS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_one_running_batch_serves_both_frontends_each_its_own_pieces(
    server: ServerHandle, log: Path
) -> None:
    for attempt in range(3):
        first = 100 * (attempt + 1)
        streams = one_round(server, first)
        frontend_of: dict[int, int] = {}
        for index, stream in enumerate(streams):
            label = first + index
            assert pieces_of(stream) == [f"{label}.{n} " for n in range(1, PIECES + 1)]
            assert stream[-1][1] == "end"
            assert stream[-1][2]["output"] == "".join(pieces_of(stream))
            frontend_of[label] = (int(stream[-1][2]["query_id"]) - 1) % 2
        if len(set(frontend_of.values())) < 2:
            continue  # the kernel sent every connection to one frontend: again
        steps = [{int(label) for label in line.split()} for line in log.read_text().splitlines()]
        mixed = [
            step for step in steps if len({frontend_of.get(label) for label in step} - {None}) == 2
        ]
        assert mixed, "no step held sequences of both frontends"
        return
    pytest.fail("every round's queries went to one frontend")
