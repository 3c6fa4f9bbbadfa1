"""The admission estimate and the queue bound (clipper.batching.admission)."""

from __future__ import annotations

from clipper.batching.admission import UNBOUNDED, Admission, derived_max_queued

NOW = 100.0


def admission(
    latency_s: float, per_round: int, free_slots: int, max_queued: int = UNBOUNDED
) -> Admission:
    state = Admission(clock=lambda: NOW)
    state.batch_latency_s = latency_s
    state.per_round = per_round
    state.free_slots = free_slots
    state.max_queued = max_queued
    return state


def test_a_cold_version_admits_whatever_is_queued() -> None:
    assert admission(0.0, 1, 0).admits(10_000, NOW + 0.001)


def test_a_query_dispatched_at_once_is_admitted_even_past_the_estimate() -> None:
    # A stale estimate (1 s a batch) must not stop the batches that would refresh it.
    assert admission(1.0, 4, 1).admits(3, NOW + 0.1)


def test_with_a_free_slot_the_query_waits_for_the_rounds_ahead_of_it() -> None:
    state = admission(0.02, 4, 1)  # 20 ms per batch of 4
    assert state.admits(15, NOW + 0.08)  # 15 // 4 + 1 = 4 batches: 80 ms
    assert not state.admits(16, NOW + 0.08)  # 5 batches: 100 ms


def test_with_every_slot_busy_the_batches_in_flight_count_too() -> None:
    state = admission(0.02, 4, 0)
    assert state.admits(11, NOW + 0.08)  # 11 // 4 + 2 = 4 batches
    assert not state.admits(12, NOW + 0.08)
    assert not state.admits(0, NOW + 0.03)  # even alone: the batch in flight, then its own


def test_the_hard_bound_refuses_whatever_the_deadline() -> None:
    state = admission(0.0, 4, 1, max_queued=8)
    assert state.admits(7, NOW + 60)
    assert not state.admits(8, NOW + 60)
    assert state.full(8)
    assert not state.full(7)


def test_retry_after_is_the_time_to_drain_the_queue_ahead() -> None:
    assert admission(0.02, 4, 0).retry_after_s(15) == 0.02 * 4


def test_the_derived_bound_is_what_the_replicas_finish_within_the_longest_slo() -> None:
    assert derived_max_queued(4, 0.02, 0.1) == 20
    assert derived_max_queued(4, 0.5, 0.1) == 4  # at least one round
    assert derived_max_queued(4, 0.0, 0.1) == UNBOUNDED  # nothing measured yet
