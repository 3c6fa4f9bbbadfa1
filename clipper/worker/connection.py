"""The worker's side of the RPC: a blocking socket shared by the serve loop and heartbeats."""

from __future__ import annotations

import socket
import threading
import time

from clipper.exceptions import RpcError
from clipper.rpc.protocol import FrameDecoder, Heartbeat, Message, encode_message

__all__ = ["WorkerConnection", "parse_address"]


def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    """`tcp://host:port` or `unix:///path` -> (family name, socket address)."""
    if address.startswith("unix://"):
        return "unix", address[len("unix://") :]
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    if not host or not port.isdigit():
        raise RpcError(f"invalid RPC address {address!r}; expected tcp://host:port or unix://path")
    return "tcp", (host, int(port))


class WorkerConnection:
    """A connected RPC socket; `send` is thread-safe, `receive` is for one reader."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()
        self._decoder = FrameDecoder()
        self._ready: list[Message] = []

    @classmethod
    def dial(cls, address: str, timeout_s: float) -> WorkerConnection:
        """Connect, retrying until `timeout_s` passes (the server may still be starting)."""
        family, target = parse_address(address)
        deadline = time.monotonic() + timeout_s
        while True:
            sock = socket.socket(socket.AF_UNIX if family == "unix" else socket.AF_INET)
            try:
                sock.connect(target)
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            if family == "tcp":
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return cls(sock)

    def send(self, payload: bytes | Message) -> None:
        """Send one encoded frame (or a message to encode)."""
        data = payload if isinstance(payload, bytes) else encode_message(payload)
        with self._send_lock:
            self._sock.settimeout(None)
            self._sock.sendall(data)

    def receive(self, timeout_s: float | None = None) -> Message | Heartbeat | None:
        """Block for the next message; None when the server closed the connection.

        With `timeout_s`, returns `Heartbeat()` as a tick when nothing arrived in time.
        """
        while not self._ready:
            self._sock.settimeout(timeout_s)
            try:
                data = self._sock.recv(1 << 20)
            except TimeoutError:
                return Heartbeat()
            except ConnectionError:
                return None
            if not data:
                return None
            self._ready.extend(self._decoder.feed(data))
        return self._ready.pop(0)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()
