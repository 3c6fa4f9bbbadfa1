"""Unit tests for clipper.placement.gpus (the allocator) and the `gpus` setting's devices."""

from __future__ import annotations

import pytest

from clipper.core.gpu_devices import GpuDevice, parse_gpu_setting
from clipper.placement.gpus import GpuAllocator


def two_gpus() -> GpuAllocator:
    return GpuAllocator(parse_gpu_setting("2"))


def test_whole_gpus_take_free_devices_in_order() -> None:
    allocator = two_gpus()
    first, second = allocator.allocate("a", 1), allocator.allocate("b", 1)
    assert first is not None
    assert second is not None
    assert (first.devices, second.devices) == ((0,), (1,))
    assert first.environment()["CUDA_VISIBLE_DEVICES"] == "0"
    assert "CLIPPER_GPU_FRACTION" not in first.environment()


def test_two_whole_gpus_in_one_grant() -> None:
    grant = two_gpus().allocate("a", 2)
    assert grant is not None
    assert grant.environment()["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_four_quarters_pack_onto_one_device() -> None:
    allocator = two_gpus()
    grants = [allocator.allocate(f"r{i}", 0.25) for i in range(4)]
    assert [g.devices for g in grants if g] == [(0,)] * 4
    assert grants[0] is not None
    assert grants[0].environment()["CLIPPER_GPU_FRACTION"] == "0.25"
    assert [s.allocated for s in allocator.samples()] == [1.0, 0.0]


def test_fractions_go_best_fit() -> None:
    allocator = two_gpus()
    allocator.allocate("half", 0.5)  # GPU 0
    allocator.allocate("whole", 1)  # GPU 1
    assert allocator.allocate("big", 0.75) is None
    quarter = allocator.allocate("quarter", 0.25)
    assert quarter is not None
    assert quarter.devices == (0,)


def test_a_whole_gpu_never_shares_a_device_holding_a_fraction() -> None:
    allocator = GpuAllocator(parse_gpu_setting("1"))
    allocator.allocate("a", 0.1)
    assert allocator.allocate("b", 1) is None


def test_refusal_when_full_names_what_is_free() -> None:
    allocator = two_gpus()
    allocator.allocate("a", 0.75)
    allocator.allocate("b", 1)
    assert allocator.allocate("c", 0.5) is None
    assert allocator.why_not(0.5) == (
        "waiting for free GPUs: it asks for 0.5 GPUs on one device; free: GPU 0 0.25, GPU 1 0"
    )


def test_reasons_for_requests_that_never_fit() -> None:
    assert "has no GPU" in GpuAllocator(()).why_not(1)
    assert two_gpus().why_not(3) == "it asks for 3 GPUs, but this machine has 2"


def test_release_frees_the_shares_once() -> None:
    allocator = two_gpus()
    old = allocator.allocate("a", 0.5)
    assert old is not None
    allocator.release(old)
    new = allocator.allocate("a", 1)  # the same holder again: a restarted replica
    allocator.release(old)  # late release of the old grant: no effect on the new one
    assert new is not None
    assert allocator.samples()[0].allocated == 1.0
    assert allocator.samples()[0].holders == (("a", 1.0),)


def test_fractions_add_up_exactly() -> None:
    allocator = GpuAllocator(parse_gpu_setting("1"))
    assert all(allocator.allocate(f"r{i}", 0.1) for i in range(10))
    assert allocator.allocate("r10", 0.1) is None


@pytest.mark.parametrize("num_gpus", [0, -1, 1.5])
def test_not_a_gpu_request(num_gpus: float) -> None:
    with pytest.raises(ValueError, match="num_gpus"):
        two_gpus().allocate("a", num_gpus)


def test_fake_devices_from_json() -> None:
    devices = parse_gpu_setting('[{"name": "fake-a100", "memory": 40000000000}, {}]')
    assert devices[0] == GpuDevice(0, "fake-a100", 40_000_000_000, "fake-0")
    assert devices[1].index == 1


@pytest.mark.parametrize("text", ["two", '{"name": "x"}', '[{"memory": "lots"}]', "[-1]"])
def test_bad_gpu_settings_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)gpu"):
        parse_gpu_setting(text)
