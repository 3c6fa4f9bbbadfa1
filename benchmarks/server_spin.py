"""A server whose event loop polls between close reads against one that sleeps at once.

Run: `.venv/bin/python -m benchmarks.server_spin [--spin-us 300] [--rounds 8]
[--workload noop|sklearn]`. Two servers run at once, each with the same model and workers
that spin as by default, one with `CLIPPER_SERVER_SPIN_US=0` and one with the spin time
given; wrk drives them in turn (alternating which goes first each round, so a drift of
this machine's speed hits both alike), at concurrency 1 and 32. Medians of the rounds,
and the median ratio of each round's pair (throughput, and p99 latency).
"""

from __future__ import annotations

from benchmarks.worker_spin import compare_spin


def main() -> None:
    names = ("sleeps at once (0 us)", "polls {} us")
    compare_spin(__doc__, "CLIPPER_SERVER_SPIN_US", "server loop", names, rounds=8)


if __name__ == "__main__":
    main()
