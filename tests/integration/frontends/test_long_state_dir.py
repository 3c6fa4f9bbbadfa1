"""Two frontends on a state directory whose path is too long for Unix sockets in it
(about 150 characters): their sockets go to a short private directory, queries are
answered, and a clean stop removes it."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import httpx

from clipper.rpc.server import UNIX_PATH_MAX
from clipper.rpc.socket_dir import PRIVATE_BASE, socket_dir
from tests.integration.cluster import ServerFactory, deploy


def total(inputs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in inputs]


def test_two_frontends_serve_from_a_long_state_dir(tmp_path: Path) -> None:
    directory = tmp_path / ("d" * max(1, 150 - len(str(tmp_path)) - len("/long/state") - 1))
    factory = ServerFactory(directory)
    try:
        server = factory("long", frontends=2)
        assert len(str(server.state_dir)) >= 140
        assert len(str(server.state_dir / "frontends" / "0.rpc.sock")) > UNIX_PATH_MAX
        deploy(server, "sum", total)

        outputs = [
            httpx.post(
                f"{server.query_url}/sum/predict", json={"input": [i, 1.0]}, timeout=10
            ).json()["output"]
            for i in range(20)
        ]  # fresh connections: both frontends answer

        assert outputs == [float(i + 1) for i in range(20)]
        private = socket_dir(server.state_dir)
        assert private.parent == PRIVATE_BASE
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        rows = server.admin.status()["frontends"]
        assert [row["rpc_address"] for row in rows] == [
            f"unix://{private}/0.rpc.sock", f"unix://{private}/1.rpc.sock"
        ]  # fmt: skip
        server.stop()
        assert not private.exists()
    finally:
        factory.stop_all()
