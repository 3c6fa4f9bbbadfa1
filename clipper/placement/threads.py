"""How many threads a local replica's numeric libraries may run: its share of the CPUs.

Left alone, OpenMP, MKL and OpenBLAS (under PyTorch, NumPy, scikit-learn) start one thread
per core in every worker, so a machine's replicas and the server fight over its cores: on
2 cores a PyTorch CNN at 2 intra-op threads beside a busy server answered a quarter of the
queries it answers at 1. Each replica therefore gets as many threads as the CPUs it takes
(`ResourceRequest.cpus`: `num_cpus`, else `cpu_share`, else 1), rounded up and at most the
machine's, unless the `worker_threads` setting fixes the number; a variable already in the
server's environment (say `OMP_NUM_THREADS`) is left as the operator set it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from clipper.core.resources import ResourceRequest

__all__ = ["THREAD_VARIABLES", "replica_threads", "thread_environment"]

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
"""The thread-count variables the numeric libraries read when they start."""


def replica_threads(resources: ResourceRequest, configured: int, cpu_count: int) -> int:
    """The threads of one replica: `configured` when positive, else its CPUs rounded up;
    always within 1..cpu_count."""
    wanted = configured if configured > 0 else math.ceil(resources.cpus)
    return max(1, min(wanted, max(1, cpu_count)))


def thread_environment(threads: int, inherited: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to a worker's environment for `threads` threads: each of
    THREAD_VARIABLES that `inherited` (the server's environment) does not set."""
    return {name: str(threads) for name in THREAD_VARIABLES if name not in inherited}
