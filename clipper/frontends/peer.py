"""The peer sockets of a server with several frontends: one JSON request per connection.

Each frontend, and the control process, listens on a Unix socket in the state directory
(`clipper.rpc.fanout.frontend_peer_path`, mode 0600). A request is one JSON line
`{"op": ..., ...}`; the answer one JSON line, then the connection closes. Ops: `stats`
(pid, index, requests answered), `metrics` (the process's own exposition text, or, asked
of the control process, every process's merged) and `feedback` (an update for a query this
frontend answered). A handler's ClipperError travels as `{"code", "error"}` and is raised
again, as its own class, on the asking side. A reply may carry file descriptors (a
listening socket handed to a frontend's successor): the handler lists them under
`FDS_KEY`, they go with the answer line (SCM_RIGHTS) and are closed on the answering
side; `ask_peer_fds` receives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from clipper.core.exceptions import ClipperError, InternalError
from clipper.http.errors import error_class

__all__ = [
    "FDS_KEY", "PEER_TIMEOUT_S", "PeerHandler", "PeerUnreachable", "ask_peer", "ask_peer_fds",
    "serve_peer",
]  # fmt: skip

log = logging.getLogger("clipper.frontends")
PEER_TIMEOUT_S = 5.0
_LINE_LIMIT = 64 * 1024 * 1024  # a metrics page of many models
FDS_KEY = "_fds"
_MAX_FDS = 8

PeerHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class PeerUnreachable(Exception):
    """Nobody answered on a peer socket (the process is down or restarting)."""


async def serve_peer(path: Path, handle: PeerHandler) -> asyncio.Server:
    """Answer peer requests on the Unix socket at `path` (a stale one replaced)."""
    _clear(path)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline())
            try:
                reply = await handle(request)
            except ClipperError as exc:
                reply = {"code": type(exc).__name__, "error": str(exc)}
            fds: list[int] = reply.pop(FDS_KEY, [])
            line = json.dumps(reply, default=_jsonable).encode() + b"\n"
            if fds:
                _send_with_fds(writer, line, fds)
            else:
                writer.write(line)
                await writer.drain()
        except (OSError, ValueError) as exc:
            log.warning("peer request failed: %s", exc)
        finally:
            writer.close()

    server = await asyncio.start_unix_server(answer, str(path), limit=_LINE_LIMIT)
    os.chmod(path, 0o600)
    return server


async def ask_peer(
    path: Path, request: dict[str, Any], timeout_s: float = PEER_TIMEOUT_S
) -> dict[str, Any]:
    """One request to the peer at `path`; its ClipperError raised again as its class."""
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_unix_connection(str(path), limit=_LINE_LIMIT)
            try:
                writer.write(json.dumps(request, default=_jsonable).encode() + b"\n")
                line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        raise PeerUnreachable(f"{path.name}: {exc}") from exc
    if not line:
        raise PeerUnreachable(f"{path.name}: closed without an answer")
    reply: dict[str, Any] = json.loads(line)
    if "code" in reply and "error" in reply:
        kind = error_class(str(reply["code"])) or InternalError
        raise kind(str(reply["error"]))
    return reply


async def ask_peer_fds(
    path: Path, request: dict[str, Any], timeout_s: float = PEER_TIMEOUT_S
) -> tuple[dict[str, Any], list[int]]:
    """`ask_peer` for a reply that carries file descriptors: the reply and the descriptors
    (the caller's to close)."""
    return await asyncio.to_thread(_ask_with_fds, path, request, timeout_s)


def _ask_with_fds(
    path: Path, request: dict[str, Any], timeout_s: float
) -> tuple[dict[str, Any], list[int]]:
    fds: list[int] = []
    data = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            while not data.endswith(b"\n"):
                chunk, received, _, _ = socket.recv_fds(sock, 65536, _MAX_FDS)
                fds.extend(received)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        raise PeerUnreachable(f"{path.name}: {exc}") from exc
    if not data:
        raise PeerUnreachable(f"{path.name}: closed without an answer")
    reply: dict[str, Any] = json.loads(data)
    if "code" in reply and "error" in reply:
        for fd in fds:
            os.close(fd)
        kind = error_class(str(reply["code"])) or InternalError
        raise kind(str(reply["error"]))
    return reply, fds


def _send_with_fds(writer: asyncio.StreamWriter, line: bytes, fds: list[int]) -> None:
    """Write `line` with `fds` attached on the writer's socket (nothing else is buffered on
    it: one answer per connection), then close `fds` here."""
    transport_socket = writer.get_extra_info("socket")
    try:
        with socket.socket(fileno=os.dup(transport_socket.fileno())) as sock:
            sent = socket.send_fds(sock, [line], fds)
            if sent < len(line):  # a short line into an empty buffer: never in practice
                sock.sendall(line[sent:])
    finally:
        for fd in fds:
            os.close(fd)


def _clear(path: Path) -> None:
    """Make the socket's directory; remove a stale socket of an earlier process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _jsonable(value: Any) -> Any:
    """numpy values (labels, outputs) as plain JSON."""
    tolist = getattr(value, "tolist", None)
    if tolist is None:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return tolist()
