"""A payload-log setting (`payload_log`, of an app or of a model version): where its query
records go, how many of its queries are recorded, and which fields a record keeps. A plain
value, validated here; the sinks themselves live in clipper.payloads.

    {"sink": "jsonl" | "cloudevents:http://HOST:PORT/PATH" | "redis://HOST:PORT/STREAM",
     "sample": 0.1, "fields": ["input", "output", ...]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from clipper.core.exceptions import InvalidRequest

__all__ = ["PAYLOAD_FIELDS", "SINK_KINDS", "PayloadLogConfig", "parse_payload_log"]

PAYLOAD_FIELDS = (
    "time",
    "app",
    "models",
    "input",
    "output",
    "outputs",
    "latency_ms",
    "default",
    "partial",
    "explanation",
    "feedback",
)
"""What a record may keep besides `kind` and `query_id` (always kept: they join a query's
record to its feedback). Leaving `feedback` out logs no feedback records."""

SINK_KINDS = ("jsonl", "cloudevents", "redis")
_KEYS = frozenset({"sink", "sample", "fields"})


@dataclass(frozen=True, slots=True)
class PayloadLogConfig:
    """A validated `payload_log`: `sink` as given, its `kind` (one of `SINK_KINDS`), the
    share of queries recorded (`sample`, 0 to 1, drawn per request) and the `fields` kept."""

    sink: str
    kind: str
    sample: float = 1.0
    fields: tuple[str, ...] = PAYLOAD_FIELDS

    def to_dict(self) -> dict[str, Any]:
        """The setting as the admin API shows and the registry stores it."""
        return {"sink": self.sink, "sample": self.sample, "fields": list(self.fields)}


def parse_payload_log(value: object) -> PayloadLogConfig | None:
    """A `payload_log` setting checked (None: logging off); InvalidRequest says what is wrong."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"payload_log must be an object or null, got {value!r:.80}")
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise InvalidRequest(
            f"payload_log has unknown keys {unknown}; it takes sink, sample and fields"
        )
    sink = value.get("sink", "jsonl")
    if not isinstance(sink, str):
        raise InvalidRequest(f"payload_log.sink must be a string, got {sink!r:.80}")
    return PayloadLogConfig(
        sink, _sink_kind(sink), _sample(value.get("sample", 1.0)), _fields(value.get("fields"))
    )


def _sink_kind(sink: str) -> str:
    if sink == "jsonl":
        return "jsonl"
    if sink.startswith("cloudevents:"):
        url = urlsplit(sink.removeprefix("cloudevents:"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InvalidRequest(
                f"payload_log.sink {sink!r}: cloudevents takes an http(s) URL "
                "(cloudevents:http://HOST:PORT/PATH)"
            )
        return "cloudevents"
    if sink.startswith(("redis://", "rediss://")):
        url = urlsplit(sink)
        if not url.hostname or not url.path.strip("/"):
            raise InvalidRequest(
                f"payload_log.sink {sink!r}: redis takes redis://HOST:PORT/STREAM (the "
                "path names the stream)"
            )
        try:
            url.port  # noqa: B018 (a port that is not a number raises here)
        except ValueError as exc:
            raise InvalidRequest(f"payload_log.sink {sink!r}: {exc}") from exc
        maxlen = parse_qs(url.query).get("maxlen", ["1"])[0]
        if not maxlen.isdigit() or int(maxlen) < 1:
            raise InvalidRequest(f"payload_log.sink {sink!r}: maxlen must be a positive integer")
        return "redis"
    raise InvalidRequest(
        f"payload_log.sink must be 'jsonl', 'cloudevents:URL' or 'redis://HOST:PORT/STREAM', "
        f"got {sink!r:.80}"
    )


def _sample(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidRequest(f"payload_log.sample must be a number from 0 to 1, got {value!r:.80}")
    return float(value)


def _fields(value: object) -> tuple[str, ...]:
    if value is None:
        return PAYLOAD_FIELDS
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest("payload_log.fields must be a list of strings")
    unknown = [item for item in value if item not in PAYLOAD_FIELDS]
    if unknown:
        raise InvalidRequest(
            f"payload_log.fields: unknown {unknown}; a record has {list(PAYLOAD_FIELDS)}"
        )
    return tuple(item for item in PAYLOAD_FIELDS if item in value)
