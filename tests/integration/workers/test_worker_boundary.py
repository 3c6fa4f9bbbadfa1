"""The worker boundary: a replica registers only with the one-time credential the server
issued it (over a pipe: nothing in the model's environment), the cluster's secret admits
only workers of containerless versions, and a model that passes its memory limit is killed
and reported while another model keeps answering (issue 28, item 7)."""

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


def register(secret: str, model: str = "calm", replica: int = 7) -> Register:
    return Register(model, "1", replica, "doubles", pid=1, secret=secret)


def environ_of_model(xs: list[Any]) -> list[str]:
    """What the model can read of its own process's environment."""
    with open("/proc/self/environ", "rb") as environ:
        return [environ.read().decode(errors="replace") for _ in xs]


@pytest.mark.parametrize("secret", ["", "0" * 64, "not-the-secret"])
def test_a_worker_without_the_clusters_secret_is_refused_and_closed(
    server: ServerHandle, secret: str
) -> None:
    answers = exchange(server, register(secret))

    assert answers == [Refused("missing or wrong cluster secret"), None]
    assert server.predict("calm", {"input": [1.0, 2.0]}).json()["output"] == 3.0


def test_a_connection_that_does_not_register_first_is_closed(server: ServerHandle) -> None:
    assert exchange(server, Heartbeat()) == [None]


def first_answer(server: ServerHandle, message: Message) -> Message:
    decoder = FrameDecoder()
    with socket.create_connection(("127.0.0.1", server.rpc_port), timeout=15) as sock:
        sock.sendall(encode(message))
        answers: list[Message] = []
        while not answers:
            answers = decoder.feed(sock.recv(65536))
    return answers[0]


def test_the_cluster_secret_cannot_register_a_replica_the_server_starts(
    server: ServerHandle,
) -> None:
    secret = (server.state_dir / SECRET_FILE).read_text().strip()

    for forged in [register(secret, replica=7), register(secret, replica=0)]:
        answer = first_answer(server, forged)
        assert isinstance(answer, Refused), answer
        assert "containerless" in answer.reason
    assert server.predict("calm", {"input": [1.0, 2.0]}).json()["output"] == 3.0
    assert secret not in server.log_path.read_text()


def test_the_secret_is_kept_private_and_admits_a_worker_of_a_containerless_version(
    server: ServerHandle,
) -> None:
    path = server.state_dir / SECRET_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    server.admin_http("add_model", {
        "model_name": "outside", "model_version": "1", "input_type": "doubles",
        "containerless": True,
    }).raise_for_status()  # fmt: skip

    answer = first_answer(server, register(path.read_text().strip(), model="outside"))

    assert answer == Welcome()
    assert path.read_text().strip() not in server.log_path.read_text()


def test_a_model_finds_no_credential_in_its_environment(server: ServerHandle) -> None:
    deploy(server, "nosy", environ_of_model)
    environ = server.predict("nosy", {"input": [1.0]}).json()["output"]
    secret = (server.state_dir / SECRET_FILE).read_text().strip()

    assert "CLIPPER_WORKER_SECRET" not in environ
    assert secret not in environ


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
