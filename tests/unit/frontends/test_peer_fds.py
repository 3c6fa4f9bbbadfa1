"""A peer reply carrying a file descriptor (the rolling restart's listening socket)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from clipper.core.exceptions import InvalidInput
from clipper.frontends.peer import FDS_KEY, ask_peer, ask_peer_fds, serve_peer


async def test_a_listening_socket_is_handed_over_and_still_accepts(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    async def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "listener":
            return {"port": listener.getsockname()[1], FDS_KEY: [os.dup(listener.fileno())]}
        raise InvalidInput("no such op")

    server = await serve_peer(tmp_path / "0.peer.sock", handle)
    reply, fds = await ask_peer_fds(tmp_path / "0.peer.sock", {"op": "listener"})
    listener.close()  # ours is gone; the one handed over keeps the socket open
    with socket.socket(fileno=fds[0]) as handed:
        client = socket.create_connection(("127.0.0.1", reply["port"]), timeout=2)
        handed.settimeout(2)
        accepted, _ = handed.accept()
        accepted.close()
        client.close()

    assert len(fds) == 1
    with pytest.raises(InvalidInput):
        await ask_peer_fds(tmp_path / "0.peer.sock", {"op": "other"})
    with pytest.raises(InvalidInput):
        await ask_peer(tmp_path / "0.peer.sock", {"op": "other"})
    server.close()
