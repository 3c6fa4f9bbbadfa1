"""The cluster's default replica memory limit (issue 28, item 17): its text, and what it
comes to on a machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from clipper.core.config import Settings
from clipper.core.exceptions import InvalidRequest
from clipper.core.process_memory import machine_memory_bytes, physical_memory_bytes
from clipper.core.resources import (
    MIN_MEMORY_LIMIT_BYTES,
    DefaultMemoryLimit,
    ReplicaLimits,
    ResourceRequest,
)
from clipper.worker.rlimits import sweep_cgroups

GIB = 1 << 30


@pytest.mark.parametrize(
    ("text", "fraction", "limit_bytes"),
    [
        ("50%", 0.5, None),
        (" 12.5% ", 0.125, None),
        ("100%", 1.0, None),
        ("4GiB", None, 4 * GIB),
        ("4gib", None, 4 * GIB),
        ("512MB", None, 512_000_000),
        ("1.5G", None, 1_500_000_000),
        ("2147483648", None, 2 * GIB),
        ("off", None, None),
        ("None", None, None),
        ("0", None, None),
    ],
)
def test_a_limit_is_a_share_an_amount_or_off(
    text: str, fraction: float | None, limit_bytes: int | None
) -> None:
    limit = DefaultMemoryLimit.parse(text)

    assert (limit.fraction, limit.limit_bytes) == (fraction, limit_bytes)
    assert DefaultMemoryLimit.parse(str(limit)) == limit  # its text reads back the same


@pytest.mark.parametrize("text", ["", "0%", "150%", "-5%", "lots", "4 parsecs", "1MB", "12%%"])
def test_anything_else_is_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="memory"):
        DefaultMemoryLimit.parse(text)


def test_a_share_comes_to_that_share_of_the_machine_never_below_a_worker() -> None:
    half = DefaultMemoryLimit.parse("50%")

    assert half.resolve(24 * GIB) == 12 * GIB
    assert half.resolve(40 << 20) == MIN_MEMORY_LIMIT_BYTES
    assert half.resolve(0) is None  # the machine's memory unknown: no share of it
    assert DefaultMemoryLimit.parse("4GiB").resolve(0) == 4 * GIB
    assert DefaultMemoryLimit.parse("off").resolve(24 * GIB) is None


def test_the_machine_is_its_memory_or_a_lower_cgroup_limit() -> None:
    machine = machine_memory_bytes()

    assert 0 < machine <= physical_memory_bytes()


def test_the_setting_defaults_to_half_the_machine_and_refuses_nonsense() -> None:
    assert Settings().replica_memory_limit == "50%"
    assert Settings(replica_memory_limit="4 GiB").replica_memory_limit == str(4 * GIB)
    assert Settings(replica_memory_limit="OFF").replica_memory_limit == "off"
    with pytest.raises(ValidationError, match="a memory limit is a share of the machine"):
        Settings(replica_memory_limit="plenty")


def test_a_version_takes_the_default_unless_it_sets_a_limit_or_zero() -> None:
    default = DefaultMemoryLimit.parse("50%")

    assert ReplicaLimits().worker_args(default) == ["--default-memory-limit", "50%"]
    assert ReplicaLimits().worker_args(DefaultMemoryLimit.parse("off")) == []
    assert ReplicaLimits(memory_limit_bytes=GIB).worker_args(default) == [
        "--memory-limit-bytes", str(GIB),
    ]  # fmt: skip
    assert ReplicaLimits(memory_limit_bytes=0).worker_args(default) == []


def test_zero_is_no_limit_and_small_limits_are_refused() -> None:
    unlimited = ResourceRequest.parse({"memory_limit": 0})

    assert unlimited.limits.memory_limit_bytes == 0
    assert ResourceRequest.parse(unlimited.to_dict()) == unlimited  # kept in the registry
    with pytest.raises(InvalidRequest, match="0: no limit"):
        ResourceRequest.parse({"memory_limit": 1024})


def test_groups_of_gone_workers_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / f"clipper-worker-{gone.stdout.strip()}").mkdir()
    live = tmp_path / f"clipper-worker-{os.getpid()}"
    live.mkdir()

    assert sweep_cgroups(tmp_path) == 1
    assert [path.name for path in tmp_path.iterdir()] == [live.name]
