"""The query path's side of payload logging: an app's bounded buffer of entries.

The query surfaces hold a dict app -> `AppTap` (kept current in place by the payload log,
clipper.payloads.writer): an app without `payload_log` costs one dict lookup per request.
For an app that logs, `offer` draws the sample and appends one tuple; no encoding, no I/O.
Invariant: `len(entries) <= capacity`; an entry that does not fit is counted in `dropped`
(reason buffer_full) and forgotten, so a stalled sink never makes a query wait.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from clipper.core.payload_config import PayloadLogConfig
from clipper.core.types import InputBuffer, InputType
from clipper.dataplane.feedback import FeedbackRequest
from clipper.dataplane.prediction import Prediction
from clipper.metrics.families import CounterCell
from clipper.payloads.records import FeedbackEntry, QueryEntry

__all__ = ["AppTap"]


class AppTap:
    """One app's buffer of payload entries waiting for its sink's writer (`wake` tells it)."""

    __slots__ = (
        "_draw",
        "app",
        "capacity",
        "config",
        "dropped",
        "entries",
        "fields",
        "input_type",
        "sample",
        "wake",
    )

    def __init__(
        self,
        app: str,
        input_type: InputType,
        config: PayloadLogConfig,
        capacity: int,
        wake: asyncio.Event,
        dropped: CounterCell,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.app = app
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
        self, buffers: Sequence[InputBuffer], predictions: Sequence[Prediction], latency_s: float
    ) -> None:
        """Record an answered request if its sample is drawn (one draw per request)."""
        if self.sample < 1.0 and self._draw() >= self.sample:
            return
        if len(self.entries) >= self.capacity:
            self.dropped.value += len(predictions)
            return
        self.entries.append((time.time(), buffers, predictions, latency_s))
        self.wake.set()

    def offer_feedback(self, request: FeedbackRequest, reply: dict[str, Any]) -> None:
        """Record accepted feedback (not sampled: it joins a query record by its id)."""
        if "feedback" not in self.fields:
            return
        if len(self.entries) >= self.capacity:
            self.dropped.value += 1
            return
        self.entries.append((time.time(), request, reply))
        self.wake.set()

    def take(self) -> list[QueryEntry | FeedbackEntry]:
        """Every waiting entry, oldest first; the buffer is empty afterwards."""
        entries, self.entries = self.entries, []
        return entries
