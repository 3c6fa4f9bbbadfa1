"""The open-files budget: the ports' caps together stay under the limit with the reserve
kept, each cap is at most what its setting asks, and the soft limit goes up to the hard."""

from __future__ import annotations

import resource

import pytest

from clipper.core.open_files import RESERVE_MIN, connection_budget, raise_open_files_limit


@pytest.mark.parametrize("open_files", [64, 256, 1024, 4096, 65536, 1 << 20])
def test_the_caps_never_exceed_the_limit_minus_the_reserve(open_files: int) -> None:
    budget = connection_budget(open_files, 10**9, 10**9, 10**9, 10**9)
    total = budget.query + budget.admin + budget.grpc + budget.rpc_unregistered

    reserve = max(RESERVE_MIN, open_files // 4)
    assert total <= max(open_files - reserve, 4)  # each cap is at least 1
    assert min(budget.query, budget.admin, budget.grpc, budget.rpc_unregistered) >= 1


def test_a_cap_is_what_the_setting_asks_when_the_limit_allows_it() -> None:
    budget = connection_budget(1 << 20, 2048, 256, 1024, 64)

    assert (budget.query, budget.admin, budget.grpc, budget.rpc_unregistered) == (
        2048,
        256,
        1024,
        64,
    )
    assert "query 2048" in budget.describe()


def test_the_common_1024_limit_caps_the_query_port_below_its_setting() -> None:
    budget = connection_budget(1024, 2048, 256, 1024, 64)

    assert budget.query < 1024 - RESERVE_MIN
    assert budget.query + budget.admin + budget.grpc + budget.rpc_unregistered <= 1024 - 256


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
        raised = raise_open_files_limit()
        assert raised == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if hard != resource.RLIM_INFINITY:
            assert raised == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
