"""The query path's side of payload logging: a log's bounded buffer of entries.

A log is an app's (every sampled query of the app, and its feedback) or a model version's
(every sampled query it answered, whichever app asked, and the queries of the version
itself). The query surfaces hold two dicts kept current in place by the payload log
(clipper.payloads.writer): app -> `PayloadTap` and `"name:version"` -> `PayloadTap`. An app
without a log costs one dict lookup per request; with no version logging, the second dict
is empty and costs one truth test. For a log, `offer` draws the sample and appends one
tuple; no encoding, no I/O. Invariant: `len(entries) <= capacity`; an entry that does not
fit is counted in `dropped` (reason buffer_full) and forgotten, so a stalled sink never
makes a query wait.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clipper.core.payload_config import PayloadLogConfig
from clipper.core.types import InputBuffer, InputType
from clipper.dataplane.feedback import FeedbackRequest
from clipper.dataplane.prediction import Prediction
from clipper.metrics.families import CounterCell
from clipper.payloads.records import FeedbackEntry, QueryEntry

__all__ = ["PayloadTap", "offer_to_versions"]


class PayloadTap:
    """One log's buffer of payload entries waiting for its sink's writer (`wake` tells it).

    `log` names it to its sink (the app's name, or `models/NAME/VERSION`: the JSONL file's
    stem), `labels` are its metrics' `app` and `model` labels (one of them empty)."""

    __slots__ = (
        "_draw",
        "capacity",
        "config",
        "dropped",
        "entries",
        "fields",
        "input_type",
        "labels",
        "log",
        "sample",
        "wake",
    )

    def __init__(
        self,
        log: str,
        labels: tuple[str, str],
        input_type: InputType,
        config: PayloadLogConfig,
        capacity: int,
        wake: asyncio.Event,
        dropped: CounterCell,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.log = log
        self.labels = labels
        self.input_type = input_type
        self.config = config
        self.sample = config.sample
        self.fields = frozenset(config.fields)
        self.capacity = capacity
        self.entries: list[QueryEntry | FeedbackEntry] = []
        self.wake = wake
        self.dropped = dropped
        self._draw = draw

    def offer(
        self,
        app: str | None,
        buffers: Sequence[InputBuffer],
        predictions: Sequence[Prediction],
        latency_s: float,
    ) -> None:
        """Record an answered request of `app` (None: a query of a model version itself)
        if its sample is drawn (one draw per request)."""
        if self.sample < 1.0 and self._draw() >= self.sample:
            return
        if len(self.entries) >= self.capacity:
            self.dropped.value += len(predictions)
            return
        self.entries.append((time.time(), app, buffers, predictions, latency_s))
        self.wake.set()

    def offer_feedback(self, app: str, request: FeedbackRequest, reply: dict[str, Any]) -> None:
        """Record accepted feedback (not sampled: it joins a query record by its id)."""
        if "feedback" not in self.fields:
            return
        if len(self.entries) >= self.capacity:
            self.dropped.value += 1
            return
        self.entries.append((time.time(), app, request, reply))
        self.wake.set()

    def take(self) -> list[QueryEntry | FeedbackEntry]:
        """Every waiting entry, oldest first; the buffer is empty afterwards."""
        entries, self.entries = self.entries, []
        return entries


def offer_to_versions(
    taps: Mapping[str, PayloadTap],
    app: str | None,
    buffers: Sequence[InputBuffer],
    predictions: Sequence[Prediction],
    latency_s: float,
) -> None:
    """Offer a request to the log of each version that answered any of its inputs (the
    names in `Prediction.models`), with the inputs that version answered."""
    if len(predictions) == 1:  # the common request: one input
        for label in predictions[0].models:
            tap = taps.get(label)
            if tap is not None:
                tap.offer(app, buffers, predictions, latency_s)
        return
    for label in dict.fromkeys(model for p in predictions for model in p.models):
        tap = taps.get(label)
        if tap is not None:
            pairs = [
                (b, p) for b, p in zip(buffers, predictions, strict=False) if label in p.models
            ]
            tap.offer(app, [b for b, _ in pairs], [p for _, p in pairs], latency_s)
