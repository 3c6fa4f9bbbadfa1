"""The worker boundary: only workers with the cluster's secret register, and a model that
passes its memory limit is killed and reported while another model keeps answering."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from clipper.rpc.protocol import FrameDecoder, Heartbeat, Message, Refused, Register, Welcome
from clipper.rpc.protocol import encode_message as encode
from clipper.rpc.secret import SECRET_FILE
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until

MEMORY_LIMIT_BYTES = 256 * 1024 * 1024


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


def memory_hog(xs: list[Any]) -> list[float]:
    hoard = b"\x01" * (1024 * 1024 * 1024)  # written, so resident: past any 256 MiB limit
    return [float(len(hoard))] * len(xs)


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    handle = module_server("boundary")
    deploy(handle, "calm", feature_sum)
    return handle


def exchange(server: ServerHandle, *messages: Message) -> list[Message | None]:
    """Send `messages` on a fresh RPC connection; what the server answers until it closes
    (None for the close), bounded in time."""
    answers: list[Message | None] = []
    decoder = FrameDecoder()
    with socket.create_connection(("127.0.0.1", server.rpc_port), timeout=15) as sock:
        sock.sendall(b"".join(encode(message) for message in messages))
        while True:
            data = sock.recv(65536)
            if not data:
                return [*answers, None]
            answers.extend(decoder.feed(data))


def register(secret: str) -> Register:
    return Register("calm", "1", 7, "doubles", pid=1, secret=secret)


@pytest.mark.parametrize("secret", ["", "0" * 64, "not-the-secret"])
def test_a_worker_without_the_clusters_secret_is_refused_and_closed(
    server: ServerHandle, secret: str
) -> None:
    answers = exchange(server, register(secret))

    assert answers == [Refused("missing or wrong cluster secret"), None]
    assert server.predict("calm", {"input": [1.0, 2.0]}).json()["output"] == 3.0


def test_a_connection_that_does_not_register_first_is_closed(server: ServerHandle) -> None:
    assert exchange(server, Heartbeat()) == [None]


def test_the_secret_is_kept_private_and_admits_a_worker(server: ServerHandle) -> None:
    path = server.state_dir / SECRET_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    decoder = FrameDecoder()
    with socket.create_connection(("127.0.0.1", server.rpc_port), timeout=15) as sock:
        sock.sendall(encode(register(path.read_text().strip())))
        answers: list[Message] = []
        while not answers:
            answers = decoder.feed(sock.recv(65536))
    assert answers == [Welcome()]
    log = server.log_path.read_text()
    assert path.read_text().strip() not in log


def replica(server: ServerHandle, model: str) -> dict[str, Any]:
    replicas = server.admin.get_all_containers(verbose=True)
    return next(r for r in replicas if r["model_name"] == model)


def test_a_model_past_its_memory_limit_is_killed_and_reported_while_others_answer(
    server: ServerHandle,
) -> None:
    resources = {"memory_limit": MEMORY_LIMIT_BYTES}
    deploy(server, "hog", memory_hog, slo_us=20_000_000, resources=resources)
    first_pid = replica(server, "hog")["pid"]
    server.worker_pids.add(first_pid)

    reply = server.predict("hog", {"input": [1.0]}).json()

    assert reply["default"] is True, reply
    reported = wait_until(
        lambda: "memory limit exceeded" in replica(server, "hog")["last_error"],
        30,
        "the memory limit to be reported",
    )
    assert reported
    assert server.predict("calm", {"input": [2.0, 3.0]}).json()["output"] == 5.0
    info = replica(server, "hog")
    assert info["restarts"] >= 1
    assert info["pid"] != first_pid


def test_limits_reach_the_worker(server: ServerHandle, tmp_path: Path) -> None:
    resources = {"cpu_share": 0.25, "max_open_files": 256}
    deploy(server, "limited", feature_sum, resources=resources)
    pid = replica(server, "limited")["pid"]
    server.worker_pids.add(pid)

    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    limits = Path(f"/proc/{pid}/limits").read_text()

    assert int(stat[16]) == 6  # nice: a quarter of the CPU weight (1.25 ** 6 ~ 3.8)
    open_files = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert open_files.split()[3:5] == ["256", "256"]
    assert server.predict("limited", {"input": [1.0, 1.0]}).json()["output"] == 2.0
