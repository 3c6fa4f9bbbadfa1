"""A bounded memory of recent answers: which models answered what, for feedback.

Bounded twice: at most `capacity` records and about `max_bytes` of remembered outputs;
the oldest records are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from clipper.dataplane.cache import estimate_size_bytes

__all__ = ["DEFAULT_QUERY_LOG_BYTES", "DEFAULT_QUERY_LOG_SIZE", "QueryLog", "QueryRecord"]

DEFAULT_QUERY_LOG_SIZE = 100_000
DEFAULT_QUERY_LOG_BYTES = 64 * 1024 * 1024
_RECORD_OVERHEAD_BYTES = 400


def _output_bytes(output: Any) -> int:
    if isinstance(output, np.ndarray):
        return int(output.nbytes) + 112
    return estimate_size_bytes(output)


class QueryRecord:
    """One answered input of an app under a selection policy or a pipeline.

    `arms` were the candidate models then; `answers` maps each model (arm) that answered
    to its output, shadows included as their answers arrive; `labels` names their
    versions; `returned` are the models whose answers made the reply; `selected` is what
    the policy selected; `judged` is set once feedback on it was counted (it counts once);
    `steps` names, for a pipeline's answer, the version of every step that made it.
    """

    __slots__ = (
        "answers",
        "app",
        "arms",
        "judged",
        "labels",
        "returned",
        "selected",
        "size_bytes",
        "steps",
        "uid",
    )

    def __init__(
        self,
        app: str,
        uid: int | None,
        arms: tuple[str, ...],
        selected: tuple[str, ...],
        answers: dict[str, Any],
        returned: tuple[str, ...],
        labels: dict[str, str],
        steps: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.uid = uid
        self.arms = arms
        self.selected = selected
        self.answers = answers
        self.returned = returned
        self.labels = labels
        self.steps = steps
        self.judged = False
        self.size_bytes = _RECORD_OVERHEAD_BYTES + sum(map(_output_bytes, answers.values()))


class QueryLog:
    """The last query records by query id; older ones are forgotten."""

    def __init__(
        self, capacity: int = DEFAULT_QUERY_LOG_SIZE, max_bytes: int = DEFAULT_QUERY_LOG_BYTES
    ) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self._records: OrderedDict[int, QueryRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def remember(self, query_id: int, record: QueryRecord) -> None:
        """Keep a record, forgetting the oldest beyond the bounds."""
        old = self._records.pop(query_id, None)
        if old is not None:
            self.size_bytes -= old.size_bytes
        self._records[query_id] = record
        self.size_bytes += record.size_bytes
        self._trim()

    def add_answer(self, query_id: int, model: str, output: Any, label: str) -> None:
        """Add a late answer (a shadow's) to a remembered record, if it is still kept."""
        record = self._records.get(query_id)
        if record is None:
            return
        record.answers[model] = output
        record.labels[model] = label
        grown = _output_bytes(output)
        record.size_bytes += grown
        self.size_bytes += grown
        self._trim()

    def get(self, query_id: int) -> QueryRecord | None:
        """The record of a query id, or None (unknown or forgotten)."""
        return self._records.get(query_id)

    def _trim(self) -> None:
        records = self._records
        while records and (len(records) > self.capacity or self.size_bytes > self.max_bytes):
            _, oldest = records.popitem(last=False)
            self.size_bytes -= oldest.size_bytes
