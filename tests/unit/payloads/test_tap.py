"""An app's payload tap: sampled per request, bounded, counting what it drops."""

from __future__ import annotations

import asyncio

from clipper.core.payload_config import PayloadLogConfig
from clipper.core.types import InputType
from clipper.dataplane.feedback import FeedbackRequest
from clipper.dataplane.prediction import Prediction
from clipper.metrics.families import CounterCell
from clipper.payloads.tap import AppTap


def tap(sample: float = 1.0, capacity: int = 10, draws: float = 0.5, **kwargs: object) -> AppTap:
    config = PayloadLogConfig("jsonl", "jsonl", sample, **kwargs)  # type: ignore[arg-type]
    event = asyncio.Event()
    return AppTap("a", InputType.DOUBLES, config, capacity, event, CounterCell(), lambda: draws)


def test_the_sample_is_drawn_per_request() -> None:
    below, above = tap(sample=0.6, draws=0.5), tap(sample=0.4, draws=0.5)
    for each in (below, above):
        each.offer([b"x"], [Prediction(1, 1.0)], 0.01)
    assert len(below.entries) == 1
    assert below.wake.is_set()
    assert above.entries == []
    assert not above.wake.is_set()
    assert tap(sample=0.0, draws=0.0).sample == 0.0


def test_a_full_buffer_drops_and_counts_each_answer() -> None:
    full = tap(capacity=2)
    for _ in range(3):
        full.offer([b"x", b"y"], [Prediction(1, 1.0), Prediction(2, 2.0)], 0.01)
    assert len(full.entries) == 2
    assert full.dropped.value == 2
    assert len(full.take()) == 2
    assert full.entries == []


def test_feedback_is_kept_only_with_its_field() -> None:
    request = FeedbackRequest(query_id=1, label=1.0, has_label=True)
    with_feedback, without = tap(), tap(fields=("input",))
    with_feedback.offer_feedback(request, {"rewards": {}})
    without.offer_feedback(request, {"rewards": {}})
    assert len(with_feedback.entries) == 1
    assert without.entries == []
