"""The server's own CPU time per query, without the kernel: this tree against another revision.

Run: `.venv/bin/python -m benchmarks.query_path [--against HEAD~3] [--rounds 5]`. Each side
is a child process that builds the real query path in memory (the lean HTTP protocol, the
query API, the dataplane, batching and a worker channel) over stub transports: a stub
client sends the next request once the last is answered (closed loop, `--concurrency`
clients), and a stub worker answers each batch one event-loop iteration later, as the
no-op model would. No socket is touched, so the figure is the Python work of a query
(`time.process_time` per answered request), stubs included.

`--instructions` counts the interpreter's instructions per query instead (`sys.settrace`
opcode events): exact and immune to the machine's drift, but about 10x slower, so use it
with `--requests 3000 --rounds 1`.

`--against REV` checks REV out into a temporary git worktree and runs both sides at once,
one per core, in every round: this VM's speed drifts 2x within minutes, and two runs at
the same time see the same drift, so the ratio of each round's pair is what to read.
Both sides run this file's harness, so REV must have the same internal constructors
(`Http11Protocol`, `QueryPort`, `DataPlane`, `WorkerChannel`); the module paths of before
the layering of issue 20 (dcff00a) are imported where the new ones are missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

BODY = b'{"input": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]}'
REQUEST = (
    b"POST /bench/predict HTTP/1.1\r\nHost: 127.0.0.1:1337\r\n"
    b"Content-Length: %d\r\nContent-Type: application/json\r\n\r\n%s" % (len(BODY), BODY)
)


def _child(requests: int, concurrency: int, instructions: bool) -> None:
    """Drive `requests` queries through the in-memory query path; print the CPU us per
    query, or with `instructions` the interpreter's instructions per query."""
    import uvloop

    from clipper.dataplane.dataplane import DataPlane

    try:
        from clipper.core.input_limits import HttpLimits
        from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
        from clipper.core.types import InputType
        from clipper.frontend.clipper_api.query_api import ClipperQueryApi
        from clipper.frontend.query_port import QueryPort
        from clipper.http.http11 import Http11Protocol, _Connections
        from clipper.metrics.server_metrics import ServerMetrics

        def query_app(dataplane: Any, metrics: Any) -> Any:
            return QueryPort(ClipperQueryApi(dataplane, metrics, 1 << 20))
    except ImportError:  # a revision from before the layers of issue 20 (dcff00a, earlier)
        from clipper.frontend.http11 import Http11Protocol, _Connections  # type: ignore
        from clipper.frontend.query_api import QueryApi  # type: ignore
        from clipper.limits import HttpLimits  # type: ignore
        from clipper.management.records import (  # type: ignore
            AppRecord,
            ModelVersionRecord,
            RegistrySnapshot,
        )
        from clipper.types import InputType  # type: ignore

        from clipper.metrics import ServerMetrics  # type: ignore

        def query_app(dataplane: Any, metrics: Any) -> Any:
            return QueryApi(dataplane, metrics, 1 << 20)

    from clipper.rpc.protocol import (
        Batch,
        BatchReply,
        FrameDecoder,
        Register,
        decode_inputs,
        encode_message,
    )
    from clipper.rpc.server import WorkerChannel

    class StubWorker(asyncio.Transport):
        """Answers each batch the server writes with its inputs, one iteration later."""

        def __init__(self, channel: WorkerChannel) -> None:
            super().__init__()
            self.channel = channel
            self.decoder = FrameDecoder()

        def write(self, data: Any) -> None:
            loop = asyncio.get_running_loop()
            for message in self.decoder.feed(bytes(data)):
                if isinstance(message, Batch):
                    rows = decode_inputs(InputType.DOUBLES, message.lens, memoryview(message.body))
                    reply = BatchReply(message.id, [row.tolist() for row in rows])
                    loop.call_soon(self.channel.data_received, encode_message(reply))

    class StubClient(asyncio.Transport):
        """One keep-alive connection: the next request goes once the last is answered."""

        def __init__(self, run: Run, protocol: Any) -> None:
            super().__init__()
            self.run = run
            self.protocol = protocol

        def write(self, data: Any) -> None:
            self.run.answered += 1
            if self.run.sent < requests:
                self.run.sent += 1
                asyncio.get_running_loop().call_soon(self.protocol.data_received, REQUEST)
            elif self.run.answered >= requests and not self.run.done.done():
                self.run.done.set_result(None)

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return ("127.0.0.1", 1) if name == "peername" else default

        def pause_reading(self) -> None:
            pass

        def resume_reading(self) -> None:
            pass

    class Run:
        def __init__(self) -> None:
            self.sent = self.answered = 0
            self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def main() -> float:
        metrics = ServerMetrics()
        dataplane = DataPlane(metrics)
        app = AppRecord("bench", InputType.DOUBLES, default_output="-1",
                        latency_slo_us=1_000_000, cache_enabled=False)  # fmt: skip
        version = ModelVersionRecord("bench", "1", InputType.DOUBLES)
        dataplane.apply(RegistrySnapshot(
            apps={"bench": app}, versions={version.model_id: version},
            current_versions={"bench": "1"}, links={"bench": ("bench",)},
        ))  # fmt: skip
        channel = WorkerChannel(dataplane.attach, dataplane.detach)
        channel.connection_made(StubWorker(channel))
        channel.data_received(encode_message(Register("bench", "1", 0, "doubles", os.getpid())))
        api = query_app(dataplane, metrics)
        connections = _Connections()  # the server's shared state (private: no socket here)
        run = Run()
        protocols = []
        for _ in range(concurrency):
            protocol = Http11Protocol(api, HttpLimits(), connections)
            protocol.connection_made(StubClient(run, protocol))
            protocols.append(protocol)
        executed = 0

        def trace(frame: FrameType, event: str, arg: object) -> Any:
            nonlocal executed
            if event == "call":
                frame.f_trace_opcodes = True
            elif event == "opcode":
                executed += 1
            return trace

        if instructions:
            sys.settrace(trace)  # every frame started from here on (not this coroutine's)
        started = time.process_time()
        for protocol in protocols:
            run.sent += 1
            asyncio.get_running_loop().call_soon(protocol.data_received, REQUEST)
        await asyncio.wait_for(run.done, timeout=600)
        cpu_s = time.process_time() - started
        sys.settrace(None)
        return executed / run.answered if instructions else 1e6 * cpu_s / run.answered

    cost_us = uvloop.run(main())
    print(Path(sys.modules["clipper"].__file__ or "").resolve().parents[1], cost_us)


def _start(
    tree: Path, requests: int, concurrency: int, instructions: bool = False
) -> subprocess.Popen[str]:
    """A child measuring `tree`'s clipper package. It runs this file as a script (not with
    `-m` from here, which would put this tree first on its path), `tree` on PYTHONPATH."""
    command = [sys.executable, __file__, "--child",
               "--requests", str(requests), "--concurrency", str(concurrency)]  # fmt: skip
    if instructions:
        command.append("--instructions")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.PIPE, text=True)


def _rounds(
    trees: dict[str, Path], rounds: int, requests: int, concurrency: int, instructions: bool
) -> dict[str, list[float]]:
    """Each round runs every tree at once; the cost per query of each, per round."""
    results: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        children = {
            name: _start(tree, requests, concurrency, instructions) for name, tree in trees.items()
        }
        for name, child in children.items():
            output, _ = child.communicate(timeout=900)
            if child.returncode != 0:
                raise RuntimeError(f"the {name} side failed")
            imported, cost = output.split()
            if Path(imported) != trees[name].resolve():
                raise RuntimeError(f"the {name} side imported clipper from {imported}")
            results[name].append(float(cost))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", help="a git revision to compare with (a worktree)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30_000, help="per side and round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count the interpreter's instructions per query instead (exact, slow: use "
        "--requests 3000 --rounds 1)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.requests, args.concurrency, args.instructions)
        return
    from benchmarks.harness import REPO_ROOT, worktree  # the parent's (a child runs as a script)
    from benchmarks.table import print_table

    with contextlib.ExitStack() as stack:
        trees = {"this tree": REPO_ROOT}
        if args.against is not None:
            trees = {args.against: stack.enter_context(worktree(args.against)), **trees}
        results = _rounds(trees, args.rounds, args.requests, args.concurrency, args.instructions)
    baseline = next(iter(results.values()))
    rows = []
    for name, values in results.items():
        ratios = [value / base for value, base in zip(values, baseline, strict=True)]
        rows.append([
            name, f"{statistics.median(values):.1f}", f"{min(values):.1f}",
            f"{statistics.median(ratios):.3f}", " ".join(f"{r:.2f}" for r in ratios),
        ])  # fmt: skip
    cost = "instructions/query" if args.instructions else "us/query"
    header = ["tree", f"{cost} (median)", "min", "vs first (median)", "per round"]
    print(f"{args.requests:,} queries per side and round, concurrency {args.concurrency}")
    print_table(header, rows)


if __name__ == "__main__":
    main()
