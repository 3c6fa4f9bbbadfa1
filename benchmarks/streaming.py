"""Streamed generation: continuous batching against request-level batching, and LitServe.

`python -m benchmarks.streaming [--duration S] [--streams 1,8,32] [--slo-ms MS]` serves the
issue's small generative model, clipper.models.char_lm (a character-level GRU with fixed
seeded weights, one token per step, torch on one thread; benchmarks/streaming_model.py),
four ways, one at a time, on this machine:

- `clipper continuous`: Clipper's continuous batching of its step form (`CharLMSteps`, app
  SLO --slo-ms: the bound on the time to the first piece, which sizes the running batch);
- `clipper request-level`: the same model with `continuous = False` and a fixed batch size
  of the most streams (its best case: every waiting query joins the next batch; SLO 60 s, so
  that its long batches are never refused nor answered with the default), as a batched
  generate call of a server without iteration-level batching runs it: every step computes
  the rows the batch started with, finished ones too, until its longest sequence is done
  (benchmarks.streaming_model.PaddedRequestSteps);
- `clipper request-level, early exit`: the same, but a finished sequence leaves the steps
  that follow (the worker's own request-level mode): less compute, the same waits;
- `litserve`: LitServe 0.2.19 (its own venv under --venv-root, torch==2.13.0 CPU) serving
  the same step model with its own continuous batching loop (`ContinuousBatchingLoop`, max
  batch the most streams; benchmarks/peers/services/litserve_stream.py).

N closed-loop clients (N = each of --streams) each send requests one after another: a short
prompt and a seed, the same sequence for every system, sampled at temperature 1 and capped
at 128 tokens; a text ends where the model emits its end of text (about 32 tokens on
average, a long tail: the model's own lengths), streamed over HTTP (Server-Sent Events from
Clipper, JSON lines from LitServe). Measured over --duration seconds after a warm-up: the
time to the first piece (p50, p99, of the requests sent in the window), pieces (generated
tokens) per second received in the window, and the requests answered with the default
(Clipper: a first piece that missed the SLO, counted as a time to the first piece past the
SLO) or failed. Every system's text is first checked against the model run here. Run it
alone: it uses both cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import orjson

from benchmarks.peers.procs import ProcessTree, free_port
from benchmarks.stream_client import HttpStatusError, StreamConnection
from benchmarks.streaming_model import PaddedRequestSteps, reference_text, request_text, steps
from clipper.core.generation import read_piece

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "benchmarks" / "peers" / "requirements"
LITSERVE_SERVICE = REPO / "benchmarks" / "peers" / "services" / "litserve_stream.py"
LITSERVE_VENV = "litserve-stream"
REQUEST_LEVEL_SLO_US = 60_000_000
READY_TIMEOUT_S = 180.0
CHECK_PROMPT, CHECK_SEED = "Clipper streams", 0  # 86 tokens
CLIPPER_APPS = (
    ("clipper continuous", "continuous"),
    ("clipper request-level", "padded"),
    ("clipper request-level, early exit", "request"),
)


@dataclass
class Outcome:
    """What one system did at one number of streams."""

    system: str
    streams: int
    duration_s: float
    pieces: int = 0
    ttfp_s: list[float] = field(default_factory=list)
    requests: int = 0
    defaults: int = 0
    errors: int = 0
    mean_batch: float | None = None  # Clipper's: inputs per step (per batch, request-level)
    mean_queued_s: float | None = None  # Clipper's: time in the queue before dispatch

    def row(self, slo_s: float) -> list[str]:
        ttfp = sorted(self.ttfp_s)
        inside = sum(value <= slo_s for value in ttfp) / len(ttfp) if ttfp else 0.0
        batch = "-" if self.mean_batch is None else f"{self.mean_batch:.1f}"
        return [
            self.system, str(self.streams), str(self.requests),
            f"{self.pieces / self.duration_s:,.0f}", _ms(_quantile(ttfp, 0.5)),
            _ms(_quantile(ttfp, 0.99)), f"{inside:.1%}", str(self.defaults + self.errors),
            batch, _ms(self.mean_queued_s),
        ]  # fmt: skip


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return "missed" if seconds == float("inf") else f"{seconds * 1e3:.1f}"


def workload(client: int) -> Callable[[], tuple[str, int]]:
    """Client `client`'s requests, in order: (prompt, seed), the same for every system."""
    rng = random.Random(client)
    count = 0

    def next_request() -> tuple[str, int]:
        nonlocal count
        count += 1
        return f"stream {client}, request {count}: ", rng.randrange(2**31)

    return next_request


# -- the systems --------------------------------------------------------------------------


@dataclass
class Target:
    """Where a system streams from and how its stream reads."""

    name: str
    port: int
    path: str
    body: Callable[[str, int], dict[str, Any]]
    pieces: Callable[[AsyncIterator[bytes]], AsyncIterator[Any]]  # None: a default
    metrics_url: str = ""  # Clipper's /metrics
    model: str = ""  # its model's name there

    async def stream(self, connection: StreamConnection, prompt: str, seed: int) -> Any:
        """The pieces of one request (None for a default answer)."""
        lines = connection.post_lines(self.path, orjson.dumps(self.body(prompt, seed)))
        return self.pieces(lines)


def clipper_body(prompt: str, seed: int) -> dict[str, Any]:
    return {"input": request_text(prompt, seed), "stream": True}


async def clipper_pieces(lines: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    """Server-Sent Events: a `data:` line per piece, then `event: end` with the reply."""
    ending = False
    async for line in lines:
        if line.startswith(b"event: end"):
            ending = True
        elif line.startswith(b"data: "):
            data = orjson.loads(line[6:])
            if not ending:
                yield data
            elif data.get("default"):
                yield None


def litserve_body(prompt: str, seed: int) -> dict[str, Any]:
    return {"prompt": prompt, "seed": seed}


async def litserve_pieces(lines: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    """One JSON line per piece; the last one's piece is empty."""
    async for line in lines:
        if line.strip():
            piece = orjson.loads(line)["piece"]
            if piece:
                yield piece


@contextlib.contextmanager
def clipper_server(scratch: Path, slo_us: int, batch_size: int) -> Any:
    """`clipper start`, then both variants deployed: apps `continuous` and `request`."""
    from clipper.artifacts.python import closure_artifact
    from clipper.cli.launcher import server_command
    from clipper.client import AdminClient
    from clipper.core.config import Settings

    settings = Settings(
        cluster_name="streaming", state_dir=scratch / "state", query_port=free_port(),
        admin_port=free_port(), rpc_port=free_port(),
    )  # fmt: skip
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    argv = server_command(settings, ["--grpc-port", str(free_port())])
    env = {**os.environ, "PYTHONPATH": python_path}
    tree = ProcessTree(argv, scratch, env, scratch / "clipper.log")
    try:
        with AdminClient.from_settings(settings, timeout_s=120.0) as admin:
            up = lambda: isinstance(admin.get_all_applications(), list)  # noqa: E731
            _wait(up, tree, "the Clipper server")
            for app, model, slo, size in (
                ("continuous", steps(), slo_us, -1),
                ("padded", PaddedRequestSteps(), REQUEST_LEVEL_SLO_US, batch_size),
                ("request", steps(continuous=False), REQUEST_LEVEL_SLO_US, batch_size),
            ):
                admin.add_app(app, "strings", "", slo)
                admin.deploy_artifact(app, 1, "strings", closure_artifact(model), batch_size=size)
                admin.add_model_links(app, [app])
                admin.set_cache(False, app_name=app)
        metrics = f"http://127.0.0.1:{settings.query_port}/metrics"
        yield [
            Target(name, settings.query_port, f"/{app}/predict", clipper_body, clipper_pieces,
                   metrics, app)
            for name, app in CLIPPER_APPS
        ]  # fmt: skip
    finally:
        tree.stop()


def litserve_python(venv_root: Path) -> Path:
    """LitServe's venv (torch first, alone: its CPU wheel is on this machine's disk)."""
    venv = venv_root / LITSERVE_VENV
    files = [REQUIREMENTS / "torch.txt", REQUIREMENTS / "litserve_stream.txt"]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()
    marker = venv / ".installed"
    if not (marker.exists() and marker.read_text() == digest):
        print(f"[streaming] installing LitServe into {venv}", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True, timeout=600)
        for path in files:
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            subprocess.run([*pip, "-r", str(path)], check=True, timeout=1800)
        marker.write_text(digest)
    return venv / "bin" / "python"


@contextlib.contextmanager
def litserve_server(scratch: Path, python: Path, batch_size: int) -> Any:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [str(python), str(LITSERVE_SERVICE), str(port), str(batch_size)]
    tree = ProcessTree(argv, scratch, env, scratch / "litserve.log")
    try:
        yield [Target("litserve", port, "/predict", litserve_body, litserve_pieces)], tree
    finally:
        tree.stop()


def _wait(ready: Callable[[], bool], tree: ProcessTree, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not tree.alive():
            raise RuntimeError(f"{what} exited: {tree.last_error()}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {READY_TIMEOUT_S:.0f} s")


# -- the load -------------------------------------------------------------------------------


async def check(target: Target, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
    """The system is up and streams the model's text for a prompt."""
    expected = reference_text(CHECK_PROMPT, CHECK_SEED)
    deadline = time.monotonic() + ready_timeout_s
    connection = StreamConnection(target.port)
    while True:
        try:
            pieces = await target.stream(connection, CHECK_PROMPT, CHECK_SEED)
            text = "".join([read_piece(piece).text async for piece in pieces if piece is not None])
            break
        except (HttpStatusError, OSError, asyncio.IncompleteReadError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    await connection.close()
    if text != expected:
        raise RuntimeError(f"{target.name} streamed {text!r}, the model gives {expected!r}")


async def measure(target: Target, streams: int, warmup_s: float, duration_s: float) -> Outcome:
    """`streams` closed-loop clients for warm-up plus duration; the window's numbers."""
    outcome = Outcome(target.name, streams, duration_s)
    start = time.monotonic() + warmup_s
    stop = start + duration_s

    async def one_client(index: int) -> None:
        next_request = workload(index)
        connection = StreamConnection(target.port)
        while time.monotonic() < stop:
            await one_request(connection, target, next_request(), outcome, start, stop)
        await connection.close()

    async with asyncio.timeout(warmup_s + duration_s + 120):
        await asyncio.gather(*(one_client(index) for index in range(streams)))
    return outcome


async def one_request(
    connection: StreamConnection,
    target: Target,
    request: tuple[str, int],
    outcome: Outcome,
    start: float,
    stop: float,
) -> None:
    sent = time.monotonic()
    counted = start <= sent < stop
    first = True
    try:
        async for piece in await target.stream(connection, *request):
            now = time.monotonic()
            if piece is None:  # the first piece missed the SLO: the default answer
                outcome.defaults += counted
                if first and counted:
                    outcome.ttfp_s.append(float("inf"))
                continue
            if first and counted:
                outcome.ttfp_s.append(now - sent)
            first = False
            if start <= now < stop:
                outcome.pieces += read_piece(piece).completion_tokens
    except (HttpStatusError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        outcome.errors += counted
        if os.environ.get("STREAMING_DEBUG"):
            print(f"[streaming] {target.name}: {exc!r}", flush=True)
        await asyncio.sleep(0.05)
        return
    outcome.requests += counted


# -- the run --------------------------------------------------------------------------------


def model_sums(target: Target) -> dict[str, float]:
    """The model's batch size and queue delay histograms' sums and counts, now."""
    if not target.metrics_url:
        return {}
    sums: dict[str, float] = {}
    for line in httpx.get(target.metrics_url, timeout=10).text.splitlines():
        name, _, value = line.rpartition(" ")
        if f'model="{target.model}"' in name and name.split("{")[0].endswith(("_sum", "_count")):
            key = name.split("{")[0]
            sums[key] = sums.get(key, 0.0) + float(value)
    return sums


def mean_of(before: dict[str, float], after: dict[str, float], family: str) -> float | None:
    count = after.get(f"{family}_count", 0.0) - before.get(f"{family}_count", 0.0)
    total = after.get(f"{family}_sum", 0.0) - before.get(f"{family}_sum", 0.0)
    return total / count if count else None


def run_targets(targets: list[Target], args: argparse.Namespace, results: list[Outcome]) -> None:
    for target in targets:
        asyncio.run(check(target))
        for streams in args.streams:
            before = model_sums(target)
            outcome = asyncio.run(measure(target, streams, args.warmup, args.duration))
            after = model_sums(target)
            if after:  # over the warm-up too
                outcome.mean_batch = mean_of(before, after, "clipper_model_batch_size")
                queued = "clipper_model_queue_delay_seconds"
                outcome.mean_queued_s = mean_of(before, after, queued)
            print(f"[streaming] {' | '.join(outcome.row(args.slo_ms / 1e3))}", flush=True)
            results.append(outcome)


def report(results: list[Outcome], slo_ms: float) -> str:
    head = ["system", "streams", "requests", "pieces/s", "TTFP p50 ms", "TTFP p99 ms",
            f"TTFP <= {slo_ms:g} ms", "defaults+errors", "mean batch",
            "mean queued ms"]  # fmt: skip
    rows = [head, ["---"] * len(head), *(outcome.row(slo_ms / 1e3) for outcome in results)]
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    by = {(outcome.system, outcome.streams): outcome for outcome in results}
    for streams in sorted({outcome.streams for outcome in results}):
        base = by.get(("clipper continuous", streams))
        if base is None:
            continue
        for other in [name for name, _ in CLIPPER_APPS[1:]] + ["litserve"]:
            against = by.get((other, streams))
            if against is not None and against.pieces:
                ratio = base.pieces / against.pieces
                lines.append(f"{streams} streams: continuous / {other} pieces/s = {ratio:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--streams", type=lambda text: [int(n) for n in text.split(",")],
                        default=[1, 8, 32])  # fmt: skip
    parser.add_argument("--slo-ms", type=float, default=250.0, help="continuous batching's")
    parser.add_argument("--systems", default="clipper,litserve")
    parser.add_argument("--venv-root", type=Path, default=Path("~/.cache/clipper-peers"))
    args = parser.parse_args(argv)
    systems = set(args.systems.split(","))
    batch_size = max(args.streams)
    results: list[Outcome] = []
    with TemporaryDirectory(prefix="clipper-streaming-") as scratch:
        if "clipper" in systems:
            with clipper_server(Path(scratch), int(args.slo_ms * 1000), batch_size) as targets:
                run_targets(targets, args, results)
        if "litserve" in systems:
            python = litserve_python(args.venv_root.expanduser())
            with litserve_server(Path(scratch), python, batch_size) as (targets, _):
                run_targets(targets, args, results)
    print(report(results, args.slo_ms))


if __name__ == "__main__":
    sys.exit(main())
