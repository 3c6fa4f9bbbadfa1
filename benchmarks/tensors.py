"""Tensor throughput of the Open Inference Protocol: REST binary, REST JSON and gRPC.

    python -m benchmarks.tensors [--seconds 1.5]

An identity model (`floats`, cache off) receives 1 MB and 8 MB FP32 tensors of shape
[1, n] and sends them back. Each transport runs one request at a time on one connection;
MB/s counts the tensor once per request (it travels in and back). The ceiling is a plain
loopback TCP echo of the same bytes between two processes (send, receive them back): no
server can do an identity round trip faster. Clients are lean (prebuilt bodies, raw
`http.client`, the generated gRPC stub) so the numbers measure the server. Each cell is
the median over `--rounds` of MB/s, and of the share of the ceiling measured just before
(paired, since loopback throughput on a shared VM drifts over minutes).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import orjson

from benchmarks.harness import _free_port, bench_server
from benchmarks.table import print_table
from clipper.frontend.oip.grpc import grpc_predict_v2_pb2 as pb
from clipper.frontend.oip.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

SIZES_MB = (1, 8)
CEILING = "loopback socket echo (ceiling)"
MODEL = "identity"
MAX_BODY_BYTES = 128 * 1024 * 1024
GRPC_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


def identity(inputs: list[Any]) -> list[Any]:
    """Every input back, as is."""
    return inputs


def measure(call: Callable[[], None], size_bytes: int, seconds: float) -> float:
    """MB/s of `call` repeated for about `seconds` (at least 3 calls) after one warm-up."""
    call()
    count, started = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - started < seconds:
        call()
        count += 1
    return count * size_bytes / (time.perf_counter() - started) / 1e6


# -- the ceiling: a loopback echo ------------------------------------------------------------


def _echo(listener: socket.socket, size: int) -> None:
    connection, _ = listener.accept()
    buffer = memoryview(bytearray(size))
    while True:
        got = 0
        while got < size:
            n = connection.recv_into(buffer[got:])
            if not n:
                return
            got += n
        connection.sendall(buffer)


def echo_client(data: bytes) -> tuple[Callable[[], None], Callable[[], None]]:
    """A call that echoes `data` through another process, and a closer."""
    listener = socket.create_server(("127.0.0.1", 0))
    process = multiprocessing.get_context("fork").Process(
        target=_echo, args=(listener, len(data)), daemon=True
    )
    process.start()
    client = socket.create_connection(listener.getsockname())
    buffer = memoryview(bytearray(len(data)))

    def call() -> None:
        client.sendall(data)
        got = 0
        while got < len(data):
            got += client.recv_into(buffer[got:])

    def close() -> None:
        client.close()
        process.join(5)
        listener.close()

    return call, close


# -- V2 REST -----------------------------------------------------------------------------------


def _grpc_echo_server(port_file: str) -> None:
    """A bare grpc.aio server whose ModelInfer echoes raw_input_contents (no Clipper)."""
    import asyncio

    class Echo(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
        async def ModelInfer(self, request: Any, context: Any) -> Any:
            return pb.ModelInferResponse(raw_output_contents=request.raw_input_contents)

    async def serve() -> None:
        server = grpc.aio.server(options=GRPC_OPTIONS)
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(Echo(), server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        Path(port_file).write_text(str(port))  # noqa: ASYNC240 (a tiny local file, once)
        await server.wait_for_termination()

    asyncio.run(serve())


def grpc_echo_client(tensor: np.ndarray[Any, Any]) -> tuple[Callable[[], None], Callable[[], None]]:
    """A call through a bare grpcio echo server in another process, and a closer."""
    with tempfile.TemporaryDirectory() as directory:
        port_file = f"{directory}/port"
        process = multiprocessing.get_context("spawn").Process(
            target=_grpc_echo_server, args=(port_file,), daemon=True
        )
        process.start()
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or not Path(port_file).read_text():
            if time.monotonic() > deadline:
                raise TimeoutError("the grpcio echo server did not start")
            time.sleep(0.05)
        port = int(Path(port_file).read_text())
    call = grpc_client(port, tensor)

    def close() -> None:
        process.kill()
        process.join(5)

    return call, close


def rest_client(port: int, tensor: np.ndarray[Any, Any], binary: bool) -> Callable[[], None]:
    """A call of /v2/models/identity/infer with `tensor` as binary data or JSON."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    entry: dict[str, Any] = {"name": "input", "datatype": "FP32", "shape": list(tensor.shape)}
    headers = {"Content-Type": "application/octet-stream"}
    if binary:
        entry["parameters"] = {"binary_data_size": tensor.nbytes}
        header = orjson.dumps({"inputs": [entry], "parameters": {"binary_data_output": True}})
        body = header + tensor.tobytes()
        headers["Inference-Header-Content-Length"] = str(len(header))
    else:
        entry["data"] = tensor.reshape(-1)
        body = orjson.dumps({"inputs": [entry]}, option=orjson.OPT_SERIALIZE_NUMPY)

    def call() -> None:
        connection.request("POST", f"/v2/models/{MODEL}/infer", body, headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"REST infer failed: {response.status} {payload[:200]!r}")

    return call


def grpc_client(port: int, tensor: np.ndarray[Any, Any]) -> Callable[[], None]:
    """A call of ModelInfer with `tensor` as raw_input_contents."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="input", datatype="FP32", shape=tensor.shape)
    request.raw_input_contents.append(tensor.tobytes())

    def call() -> None:
        response = stub.ModelInfer(request, timeout=60)
        if len(response.raw_output_contents[0]) != tensor.nbytes:
            raise RuntimeError("gRPC infer returned the wrong number of bytes")

    return call


def run(seconds: float, rounds: int) -> list[list[str]]:
    """Every transport at every size; table rows."""
    grpc_port = _free_port()
    env = {"CLIPPER_GRPC_PORT": str(grpc_port), "CLIPPER_MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
    cells: dict[str, list[str]] = {}
    with bench_server(env) as server:
        server.deploy(MODEL, identity, input_type="floats", slo_us=30_000_000)
        server.admin("set_cache", {"model_name": MODEL, "enabled": False})
        for size_mb in SIZES_MB:
            size = size_mb * 1024 * 1024
            tensor = np.random.default_rng(0).random((1, size // 4), dtype=np.float32)
            echo, close = echo_client(tensor.tobytes())
            grpc_echo, close_grpc_echo = grpc_echo_client(tensor)
            calls = {
                "bare grpcio echo, no Clipper (reference)": grpc_echo,
                "V2 REST, binary data": rest_client(server.query_port, tensor, binary=True),
                "V2 REST, JSON data": rest_client(server.query_port, tensor, binary=False),
                "V2 gRPC, raw contents": grpc_client(grpc_port, tensor),
            }
            # This machine's loopback throughput drifts by 3x over minutes: each transport
            # is measured right after the ceiling, and its share is the median of those
            # paired ratios over the rounds.
            echo_mbps: list[float] = []
            shares: dict[str, list[float]] = {name: [] for name in calls}
            mbps: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(rounds):
                for name, call in calls.items():
                    ceiling = measure(echo, size, seconds)
                    value = measure(call, size, seconds)
                    echo_mbps.append(ceiling)
                    mbps[name].append(value)
                    shares[name].append(value / ceiling)
            cells.setdefault(CEILING, []).append(f"{statistics.median(echo_mbps):,.0f} (100%)")
            for name in calls:
                median_mbps = statistics.median(mbps[name])
                share = statistics.median(shares[name])
                cells.setdefault(name, []).append(f"{median_mbps:,.0f} ({share:.0%})")
            close()
            close_grpc_echo()
    return [[name, *values] for name, values in cells.items()]


def main() -> None:
    """Run and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per cell (median)")
    args = parser.parse_args()
    rows = run(args.seconds, args.rounds)
    print_table(
        ["transport", *(f"{size} MB FP32: MB/s (share of ceiling)" for size in SIZES_MB)], rows
    )


if __name__ == "__main__":
    main()
