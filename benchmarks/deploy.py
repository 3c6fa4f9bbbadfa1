"""Deploy latency: from the deploy call to the first answered query.

Run: `.venv/bin/python -m benchmarks.deploy [--runs 5]`. Starts one real server and, for
each case, times (client side) building the artifact, uploading it, preparing its
environment, registering the version, waiting for its replica, linking it and the first
query answered by the model (not a default output). Cases:

  (a) a closure whose environment the server's interpreter satisfies (target < 3 s);
  (b) a closure whose environment was already built and cached (target < 5 s): it needs a
      package the server lacks (`inflection`), built once before the timed runs;
  (c) for reference, that first build itself (venv + pip, network included; one run).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from benchmarks.harness import BenchServer, bench_server
from benchmarks.table import print_table
from clipper.artifacts.python import closure_artifact
from clipper.client import AdminClient, QueryClient
from clipper.environments.interpreter import this_interpreter
from clipper.security import read_admin_token

PACKAGE = "inflection==0.5.1"
TARGETS_S = {"a": 3.0, "b": 5.0}


def feature_sum(inputs: list[Any]) -> list[float]:
    """The closure of case (a): numpy only, which the server has."""
    return [float(x.sum()) for x in inputs]


def inflection_version(inputs: list[Any]) -> list[str]:
    """The closure of cases (b) and (c): needs a package the server does not have."""
    import inflection

    return [inflection.__version__ for _ in inputs]


def timed_deploy(
    server: BenchServer, app: str, version: int, func: Any, pkgs: list[str], value: Any
) -> float:
    """Seconds from the deploy call to the first answer of the new version."""
    token = read_admin_token(server.state_dir)
    admin = AdminClient("127.0.0.1", server.admin_port, timeout_s=60, token=token)
    query = QueryClient("127.0.0.1", server.query_port, timeout_s=60)
    try:
        started = time.perf_counter()
        artifact = closure_artifact(func, pkgs_to_install=pkgs)
        admin.deploy_artifact(app, version, "doubles", artifact, build_timeout_s=600)
        admin.add_model_links(app, [app])
        reply = query.predict(app, input=value)
        elapsed = time.perf_counter() - started
    finally:
        admin.close()
        query.close()
    if reply.get("default"):
        raise RuntimeError(f"{app}:{version} answered its default output: {reply}")
    return elapsed


def run_case(server: BenchServer, app: str, func: Any, pkgs: list[str], runs: int) -> list[float]:
    server.admin("add_app", {"name": app, "input_type": "doubles", "default_output": "-1",
                             "latency_slo_micros": 5_000_000})  # fmt: skip
    return [timed_deploy(server, app, v, func, pkgs, [1.0, 2.0]) for v in range(1, runs + 1)]


def row(case: str, times: list[float], target: float | None) -> list[str]:
    verdict = "-" if target is None else ("yes" if max(times) < target else "NO")
    return [
        case, str(len(times)), f"{statistics.median(times):.2f}", f"{min(times):.2f}",
        f"{max(times):.2f}", "-" if target is None else f"< {target:g}", verdict,
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed deploys per case")
    args = parser.parse_args()
    if "inflection" in this_interpreter().distributions:
        raise SystemExit("inflection is installed here: case (b) would not need a venv")
    with bench_server() as server:
        satisfied = run_case(server, "satisfied", feature_sum, [], args.runs)
        first_build = run_case(server, "first-build", inflection_version, [PACKAGE], 1)
        cached = run_case(server, "cached-env", inflection_version, [PACKAGE], args.runs)
    header = ["case", "runs", "median s", "min s", "max s", "target", "met"]
    print_table(header, [
        row("(a) environment satisfied by the server", satisfied, TARGETS_S["a"]),
        row("(b) environment built before (cached venv)", cached, TARGETS_S["b"]),
        row("(c) first build of that environment", first_build, None),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
