"""Batch sizing policies: AIMD against an SLO, and a fixed maximum."""

from __future__ import annotations

import pytest

from clipper.batching.sizing import AimdBatchSizer, FixedBatchSizer, make_sizer

SLO_S = 0.1  # the target is SLO_S * (1 - 0.1 headroom) = 0.09 s
FAST_S = 0.01
OVER_TARGET_S = 0.095  # under the SLO itself, but inside the headroom


def grown(sizer: AimdBatchSizer, full_batches: int) -> AimdBatchSizer:
    """Feed `full_batches` full, fast batches."""
    for _ in range(full_batches):
        sizer.observe(sizer.size, FAST_S)
    return sizer


def test_aimd_starts_at_one() -> None:
    assert AimdBatchSizer(SLO_S).size == 1


def test_aimd_grows_by_one_after_each_full_batch_under_the_target() -> None:
    sizer = AimdBatchSizer(SLO_S)
    sizes = []
    for _ in range(4):
        sizer.observe(sizer.size, FAST_S)
        sizes.append(sizer.size)

    assert sizes == [2, 3, 4, 5]


def test_aimd_does_not_grow_after_a_batch_that_was_not_full() -> None:
    sizer = grown(AimdBatchSizer(SLO_S), 4)

    sizer.observe(4, FAST_S)

    assert sizer.size == 5


@pytest.mark.parametrize(("full_batches", "shrunk"), [(9, 9), (19, 18), (4, 4)])
def test_aimd_shrinks_by_a_tenth_after_a_batch_over_the_target(
    full_batches: int, shrunk: int
) -> None:
    sizer = grown(AimdBatchSizer(SLO_S), full_batches)

    sizer.observe(sizer.size, OVER_TARGET_S)

    assert sizer.size == shrunk


def test_aimd_shrinks_after_a_slow_batch_even_when_it_was_not_full() -> None:
    sizer = grown(AimdBatchSizer(SLO_S), 9)

    sizer.observe(1, OVER_TARGET_S)

    assert sizer.size == 9


def test_aimd_never_goes_below_one() -> None:
    sizer = grown(AimdBatchSizer(SLO_S), 2)

    for _ in range(20):
        sizer.observe(sizer.size, 10.0)

    assert sizer.size == 1


def test_aimd_never_goes_above_its_maximum() -> None:
    sizer = grown(AimdBatchSizer(SLO_S, max_size=3), 10)

    assert sizer.size == 3


def test_aimd_follows_a_changed_slo() -> None:
    sizer = AimdBatchSizer(SLO_S)
    sizer.set_slo(1.0)

    sizer.observe(1, 0.5)

    assert sizer.size == 2


def test_aimd_custom_increase_and_decrease() -> None:
    sizer = AimdBatchSizer(SLO_S, increase=4, decrease=0.5)
    sizer.observe(1, FAST_S)
    sizer.observe(5, FAST_S)

    sizer.observe(9, OVER_TARGET_S)

    assert sizer.size == 4


def test_fixed_sizer_keeps_its_size_whatever_it_observes() -> None:
    sizer = FixedBatchSizer(9)

    sizer.observe(9, FAST_S)
    sizer.observe(9, 10.0)

    assert sizer.size == 9


@pytest.mark.parametrize("size", [0, -1])
def test_fixed_sizer_refuses_a_size_below_one(size: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FixedBatchSizer(size)


@pytest.mark.parametrize("batch_size", [-1, 0])
def test_make_sizer_without_a_positive_size_is_adaptive(batch_size: int) -> None:
    sizer = make_sizer(batch_size, SLO_S)

    assert isinstance(sizer, AimdBatchSizer)
    assert sizer.size == 1


def test_make_sizer_adaptive_uses_the_given_slo() -> None:
    tight, loose = make_sizer(-1, SLO_S), make_sizer(-1, 1.0)

    tight.observe(1, 0.5)
    loose.observe(1, 0.5)

    assert (tight.size, loose.size) == (1, 2)


def test_make_sizer_adaptive_doubles_until_a_batch_is_over_the_target() -> None:
    sizer = make_sizer(-1, 1.0)
    sizes = []
    for _ in range(6):
        sizer.observe(sizer.size, 0.1)
        sizes.append(sizer.size)
    assert sizes == [2, 4, 8, 16, 32, 64]
    sizer.observe(64, 0.95)  # over the target, 0.9 s
    assert sizer.size == 57  # the first batch over the target ends the doubling
    sizer.observe(57, 0.1)
    assert sizer.size == 58


def test_make_sizer_with_a_positive_size_is_fixed() -> None:
    sizer = make_sizer(9, SLO_S)

    assert isinstance(sizer, FixedBatchSizer)
    assert sizer.size == 9


def test_aimd_slow_start_doubles_until_the_first_batch_over_the_target() -> None:
    sizer = AimdBatchSizer(slo_s=1.0, max_size=64, slow_start=True)
    for expected in (2, 4, 8, 16):
        sizer.observe(sizer.size, 0.1)
        assert sizer.size == expected
    assert sizer.growing
    sizer.observe(16, 2.0)
    assert (sizer.size, sizer.growing) == (14, False)
    sizer.observe(14, 0.1)
    assert sizer.size == 15  # additive from then on
