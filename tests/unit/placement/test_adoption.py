"""Which processes a control process adopts as workers of an earlier one."""

from __future__ import annotations

from clipper.core.types import ModelId, ReplicaId
from clipper.placement.local import _worker_replica

WORKER = ["/venv/bin/python", "-m", "clipper.worker", "--connect", "unix:///s/rpc.sock",
          "--model", "sum", "--version", "2", "--replica", "3"]  # fmt: skip


def test_a_worker_serving_frontends_is_adoptable_as_its_replica() -> None:
    argv = [*WORKER, "--frontend", "unix:///s/frontends/0.rpc.sock"]
    assert _worker_replica(argv) == ReplicaId(ModelId("sum", "2"), 3)


def test_a_worker_of_one_frontend_or_another_program_is_not() -> None:
    assert _worker_replica(WORKER) is None  # it died with its server (PDEATHSIG)
    assert _worker_replica(["python", "-m", "clipper.frontends", "--frontend", "x"]) is None
    assert _worker_replica([*WORKER[:-1], "--frontend", "x"]) is None  # no replica number
