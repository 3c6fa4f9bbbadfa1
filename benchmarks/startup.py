"""Time from launching `clipper start` to the server's first 200 from `GET /readyz`.

Run: `.venv/bin/python -m benchmarks.startup [--runs 7] [--against REV] [--tree REV]`.
Each run starts `python -m clipper.cli start` on free ports in a fresh state directory (so
the registry is created, as at a first start), polls the query port until it accepts a
connection, waits for `/readyz` to answer 200, notes the server's CPU time so far, and
stops it. With `--against REV`, REV is checked out in a temporary `git worktree` and
launches of the two trees alternate (each imports its own `clipper`: PYTHONPATH and the
working directory point at it), so a drift of this machine's speed hits both alike; the
ratios are medians of each pair's ratio. `--tree REV` measures REV instead of the working
tree. CPU time (user + system, in 10 ms ticks) drifts less than wall time on a shared VM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import REPO_ROOT, BenchServer, _free_port, launched_server, worktree
from benchmarks.table import print_table

READY_TIMEOUT_S = 30.0
POLL_S = 0.002
"""Between refused connections: the kernel queues a connection to a bound port until the
server accepts it, so only the time before the port is bound is polled."""


@dataclass(frozen=True, slots=True)
class Launch:
    """One start: wall time to the first 200 from `/readyz`, and the server's CPU time."""

    wall_s: float
    cpu_s: float


def launch(tree: Path) -> Launch:
    """Start a server of `tree`, wait for its first 200 from `/readyz`, stop it."""
    env = {"PYTHONPATH": str(tree), "CLIPPER_GRPC_PORT": str(_free_port())}
    started = time.monotonic()
    with launched_server(env, cwd=tree) as server:
        _wait_ready(server, started + READY_TIMEOUT_S)
        wall_s = time.monotonic() - started
        return Launch(wall_s, _cpu_s(server.process.pid))


def _wait_ready(server: BenchServer, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited; see {server.state_dir}/bench-server.out")
        if _readyz_status(server.query_port, deadline) == 200:
            return
        time.sleep(POLL_S)
    raise TimeoutError("the server did not become ready")


def _readyz_status(port: int, deadline: float) -> int | None:
    """The status of one `GET /readyz`; None while the port refuses connections."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=deadline - time.monotonic())
    except ConnectionRefusedError:
        return None
    with sock:
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            head += chunk
    return int(head.split(b" ", 2)[1])


def _cpu_s(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compile_tree(tree: Path) -> None:
    """Write the .pyc files of `tree`'s package, as an install would: an interpreter run with
    PYTHONDONTWRITEBYTECODE (set on this machine) never writes them, and compiling at each
    import costs about 2 ms per module."""
    command = [sys.executable, "-m", "compileall", "-q", str(tree / "clipper")]
    subprocess.run(command, check=True)


def measure(trees: dict[str, Path], runs: int) -> dict[str, list[Launch]]:
    """`runs` launches of each tree, alternating which goes first."""
    names = list(trees)
    for name in names:
        compile_tree(trees[name])
        launch(trees[name])  # warm-up: the page cache
    launches: dict[str, list[Launch]] = {name: [] for name in names}
    for index in range(runs):
        for name in names if index % 2 == 0 else names[::-1]:
            launches[name].append(launch(trees[name]))
    return launches


def report(launches: dict[str, list[Launch]]) -> None:
    """A table: median and min per tree, and the median ratios to the last tree."""
    names = list(launches)
    base = launches[names[-1]]
    header = ["tree", "runs", "wall median s", "wall min s", "CPU median s"]
    if len(names) > 1:
        header += [f"wall vs {names[-1]}", f"CPU vs {names[-1]}"]
    rows = []
    for name, runs in launches.items():
        wall = [run.wall_s for run in runs]
        cpu = [run.cpu_s for run in runs]
        row = [name, str(len(runs)), f"{statistics.median(wall):.3f}", f"{min(wall):.3f}",
               f"{statistics.median(cpu):.2f}"]  # fmt: skip
        if len(names) > 1:
            row.append(_ratio(wall, [run.wall_s for run in base]))
            row.append(_ratio(cpu, [run.cpu_s for run in base]))
        rows.append(row)
    print_table(header, rows)


def _ratio(values: list[float], base: list[float]) -> str:
    return f"{statistics.median(a / b for a, b in zip(values, base, strict=True)):.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="launches per tree")
    parser.add_argument("--against", metavar="REV", help="also launch this git revision")
    parser.add_argument("--tree", metavar="REV", help="launch REV instead of the working tree")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(worktree(args.tree)) if args.tree else REPO_ROOT
        trees = {args.tree or "working tree": first}
        if args.against:
            trees[args.against] = stack.enter_context(worktree(args.against))
        report(measure(trees, args.runs))


if __name__ == "__main__":
    main()
