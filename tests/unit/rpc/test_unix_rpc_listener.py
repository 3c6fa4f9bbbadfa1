"""The Unix-socket RPC listener that local workers dial: permissions, stale files, limits."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from clipper.rpc.credentials import ReplicaCredentials
from clipper.rpc.protocol import FrameDecoder, Refused, Register, encode_message
from clipper.rpc.server import UNIX_PATH_MAX, WorkerChannel, start_unix_rpc_listener

CHECK = ReplicaCredentials("the-secret", lambda model, version: True).check


def accept_all(channel: WorkerChannel, message: Register) -> str | None:
    return None


def forget(channel: WorkerChannel) -> None:
    return None


async def test_the_socket_is_private_and_replaces_a_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "rpc.sock"
    path.write_text("left by a crashed server")

    server = await start_unix_rpc_listener(path, accept_all, forget, CHECK)

    assert server is not None
    try:
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(encode_message(Register("m", "1", 0, "doubles", pid=1, secret="wrong")))
        answer = FrameDecoder().feed(await asyncio.wait_for(reader.read(4096), 10))
        assert isinstance(answer[0], Refused)  # the secret is checked here too
        writer.close()
    finally:
        server.close()


async def test_a_path_too_long_for_a_socket_address_gives_none(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (UNIX_PATH_MAX - len(str(tmp_path)))) / "rpc.sock"

    assert await start_unix_rpc_listener(deep, accept_all, forget, CHECK) is None
