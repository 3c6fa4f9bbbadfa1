"""The query log that feedback by query id reads: bounded in records and in bytes."""

from __future__ import annotations

import numpy as np

from clipper.dataplane.query_log import QueryLog, QueryRecord


def record(output: object) -> QueryRecord:
    return QueryRecord("app", None, ("a",), ("a",), {"a": output}, ("a",), {"a": "a:1"})


def test_the_oldest_records_go_beyond_capacity() -> None:
    log = QueryLog(capacity=2)
    for query_id in (1, 2, 3):
        log.remember(query_id, record(query_id))

    assert (log.get(1), len(log)) == (None, 2)
    assert log.get(3) is not None


def test_large_outputs_are_bounded_by_bytes() -> None:
    log = QueryLog(max_bytes=3_000_000)
    for query_id in range(5):
        log.remember(query_id, record(np.zeros(1_000_000, dtype=np.uint8)))

    assert len(log) == 2
    assert log.size_bytes <= 3_000_000


def test_a_late_answer_joins_its_record() -> None:
    log = QueryLog()
    log.remember(1, record(1))

    log.add_answer(1, "b", 2, "b:1")
    log.add_answer(99, "b", 2, "b:1")  # forgotten or unknown: ignored

    kept = log.get(1)
    assert kept is not None
    assert (kept.answers, kept.labels) == ({"a": 1, "b": 2}, {"a": "a:1", "b": "b:1"})
