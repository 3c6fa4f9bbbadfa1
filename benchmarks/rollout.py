"""Canary rollouts under steady load (issue 23): seven new versions, one run.

Run: `.venv/bin/python -m benchmarks.rollout [--step-s 3] [--clients 8]`.
One app and model (version 1 answers 1.0 in about 5 ms) takes steady load from `--clients`
closed-loop clients, each input new (no cache hits), for the whole run; each answer gets
feedback, its output (at most 1) as its reward. New versions are rolled out against the
current one, one after the other: good (the same answers), errors (raises on a tenth of
its inputs), slow (3x the latency) and disagreeing (answers 2.0), each with a shadow step
before the default shares (5%, 25%, 50%, 100%), `--step-s` each; then errors, slow and a
version whose answers earn half the reward (answers 0.5), with no shadow step: the traffic
steps must catch them, with no client failure (a query the new version fails is answered
by the current one). Every plan adds `min_reward_ratio: 0.9`. For each it prints the
decision, the check and step that decided, the seconds from start to decision, the
queries the new version answered (its batch sizes' sum on /metrics: shadow copies and
retried ones included) and the client-visible failures in that time (an error status or a
default answer; goal 0).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import httpx

from benchmarks.harness import BenchServer, bench_server
from benchmarks.steady_load import SteadyLoad
from benchmarks.table import print_table
from clipper.artifacts.python import closure_artifact

__all__ = ["main"]

APP = "canary"


def answers(value: float, sleep_s: float) -> Callable[[list[Any]], list[float]]:
    def predict(inputs: list[Any]) -> list[float]:
        import time as clock

        clock.sleep(sleep_s)
        return [value] * len(inputs)

    return predict


def errors_on_tenth(value: float, sleep_s: float) -> Callable[[list[Any]], list[float]]:
    def predict(inputs: list[Any]) -> list[float]:
        import time as clock

        clock.sleep(sleep_s)
        if any(int(x[0]) % 10 == 0 for x in inputs):
            raise ValueError("a bad input")
        return [value] * len(inputs)

    return predict


def served(server: BenchServer, version: str) -> float:
    """The queries `version` answered so far (its batch sizes' sum on /metrics)."""
    text = httpx.get(f"http://127.0.0.1:{server.query_port}/metrics", timeout=10).text
    for line in text.splitlines():
        if (line.startswith("clipper_model_batch_size_sum{") and f'model="{APP}"' in line
                and f'version="{version}"' in line):  # fmt: skip
            return float(line.rpartition(" ")[2])
    return 0.0


def roll_out(
    server: BenchServer, load: SteadyLoad, version: str, func: Any, plan: dict[str, Any]
) -> list[str]:
    """Roll `func` out as `version`; the row: decision, seconds, served, failures."""
    url = f"http://127.0.0.1:{server.admin_port}/admin/artifacts/{APP}/{version}"
    httpx.put(url, content=closure_artifact(func), headers=server.admin_headers,
              timeout=60).raise_for_status()  # fmt: skip
    failures_before = len(load.failures)
    server.admin("add_model", {"model_name": APP, "model_version": version,
                               "input_type": "doubles", "num_replicas": 1,
                               "rollout": plan})  # fmt: skip
    while server.admin("get_rollout", {"model_name": APP}).get("model_version") != version:
        time.sleep(0.05)  # add_model returns once the rollout has started
    started = time.monotonic()
    deadline = started + 20 * plan["step_s"] + 60
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:  # bounded
        status = server.admin("get_rollout", {"model_name": APP})
        if status["state"] != "running":
            break
        time.sleep(0.1)
    seconds = time.monotonic() - started
    reason = status.get("reason", "")
    step, check = "", ""
    if status.get("state") == "rolled_back":  # "step 2 (5%): max_error_rate: new version ..."
        step, _, rest = reason.partition(":")
        check = rest.partition(":")[0].strip()
    failures = len(load.failures) - failures_before
    return [status.get("state", "?"), check, step, f"{seconds:.1f}",
            f"{served(server, version):.0f}", str(failures)]  # fmt: skip


def capped(output: Any) -> float:
    """An answer's reward: its output, at most 1 (version 1's answers earn 1)."""
    return min(1.0, max(0.0, float(output)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-s", type=float, default=3.0, help="each step's seconds")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--min-queries", type=int, default=30)
    args = parser.parse_args()
    reward = {"min_reward_ratio": {"threshold": 0.9, "min_queries": args.min_queries}}
    shadowed = {"shadow_s": args.step_s, "step_s": args.step_s,
                "min_queries": args.min_queries, "checks": reward}  # fmt: skip
    unshadowed = {**shadowed, "shadow_s": 0}
    sleep_s = 0.005
    cases = [
        ("good", answers(1.0, sleep_s), shadowed),
        ("10% errors", errors_on_tenth(1.0, sleep_s), shadowed),
        ("3x slower", answers(1.0, 3 * sleep_s), shadowed),
        ("disagrees", answers(2.0, sleep_s), shadowed),
        ("10% errors, no shadow", errors_on_tenth(1.0, sleep_s), unshadowed),
        ("3x slower, no shadow", answers(1.0, 3 * sleep_s), unshadowed),
        ("half the reward, no shadow", answers(0.5, sleep_s), unshadowed),
    ]
    rows = []
    with bench_server() as server:
        server.deploy(APP, answers(1.0, sleep_s), slo_us=100_000)
        query_url = f"http://127.0.0.1:{server.query_port}"
        with SteadyLoad(query_url, APP, args.clients, reward=capped) as load:
            for index, (name, func, plan) in enumerate(cases):
                rows.append([name, *roll_out(server, load, str(index + 2), func, plan)])
    queries = load.answered + len(load.failures)
    print(f"\n## Canary rollouts under load: {args.clients} clients, steps of {args.step_s:g} s "
          f"([shadow,] 5%, 25%, 50%, 100%), {queries} queries in all, {load.rewarded} "
          f"feedbacks ({len(load.feedback_failures)} refused)\n")  # fmt: skip
    print_table(["version", "decision", "check", "step", "s to decision",
                 "new version served", "client failures"], rows)  # fmt: skip


if __name__ == "__main__":
    main()
