"""A payload tap: sampled per request, bounded, counting what it drops; a request reaches
the log of each version that answered it."""

from __future__ import annotations

import asyncio

from clipper.core.payload_config import PayloadLogConfig
from clipper.core.types import InputType
from clipper.dataplane.feedback import FeedbackRequest
from clipper.dataplane.prediction import Prediction
from clipper.metrics.families import CounterCell
from clipper.payloads.tap import PayloadTap, offer_to_versions


def tap(
    sample: float = 1.0, capacity: int = 10, draws: float = 0.5, **kwargs: object
) -> PayloadTap:
    config = PayloadLogConfig("jsonl", "jsonl", sample, **kwargs)  # type: ignore[arg-type]
    event = asyncio.Event()
    return PayloadTap(
        "a", ("a", ""), InputType.DOUBLES, config, capacity, event, CounterCell(), lambda: draws
    )


def test_the_sample_is_drawn_per_request() -> None:
    below, above = tap(sample=0.6, draws=0.5), tap(sample=0.4, draws=0.5)
    for each in (below, above):
        each.offer("a", [b"x"], [Prediction(1, 1.0)], 0.01)
    assert len(below.entries) == 1
    assert below.wake.is_set()
    assert above.entries == []
    assert not above.wake.is_set()
    assert tap(sample=0.0, draws=0.0).sample == 0.0


def test_a_full_buffer_drops_and_counts_each_answer() -> None:
    full = tap(capacity=2)
    for _ in range(3):
        full.offer("a", [b"x", b"y"], [Prediction(1, 1.0), Prediction(2, 2.0)], 0.01)
    assert len(full.entries) == 2
    assert full.dropped.value == 2
    assert len(full.take()) == 2
    assert full.entries == []


def test_feedback_is_kept_only_with_its_field() -> None:
    request = FeedbackRequest(query_id=1, label=1.0, has_label=True)
    with_feedback, without = tap(), tap(fields=("input",))
    with_feedback.offer_feedback("a", request, {"rewards": {}})
    without.offer_feedback("a", request, {"rewards": {}})
    assert len(with_feedback.entries) == 1
    assert without.entries == []


def test_a_version_logs_only_the_inputs_it_answered() -> None:
    logged, other = tap(), tap()
    taps = {"m:1": logged, "n:1": other}
    answers = [
        Prediction(1, 1.0, models=("m:1",)),
        Prediction(2, -1, True, "SLO missed"),
        Prediction(3, 2.0, models=("m:1", "k:2")),
    ]
    offer_to_versions(taps, "a", [b"x", b"y", b"z"], answers, 0.01)
    [(_, app, buffers, predictions, _)] = logged.take()
    assert (app, buffers) == ("a", [b"x", b"z"])
    assert [p.query_id for p in predictions] == [1, 3]
    assert other.entries == []
    offer_to_versions(taps, None, [b"w"], [Prediction(4, 3.0, models=("n:1",))], 0.01)
    assert [entry[1] for entry in other.take()] == [None]  # a query of the version itself
