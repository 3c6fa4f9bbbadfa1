"""Where payload records go: the sink protocol, and opening a sink by its `payload_log.sink`.

A sink writes one log's batch of rendered records (clipper.payloads.records) and raises when
it could not; the writer (clipper.payloads.writer) bounds each write by
`payload_log_timeout_s` and counts what a failed write carried as dropped. Three kinds:
`jsonl` (clipper.payloads.jsonl), `cloudevents:URL` (clipper.payloads.cloudevents) and
`redis://HOST:PORT/STREAM` (clipper.payloads.redis_stream; the optional `redis` package).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from clipper.core.exceptions import InvalidRequest
from clipper.core.payload_config import PayloadLogConfig

__all__ = ["PayloadSink", "SinkSettings", "check_sink_available", "open_sink"]


class PayloadSink(Protocol):
    """A destination of payload records; `kind` labels its metrics."""

    kind: str

    async def write(self, log: str, records: list[dict[str, Any]]) -> None:
        """Write one log's records (`log`: an app's name, or `models/NAME/VERSION`), oldest
        first; raise if they were not all written."""

    async def aclose(self) -> None:
        """Release the sink's files or connections."""


@dataclass(frozen=True, slots=True)
class SinkSettings:
    """What the sinks need of the server: where JSONL files go and how they rotate, the
    longest write, and the CloudEvents `source` and `namespace` (the query port's URL and
    the cluster's name)."""

    payloads_dir: Path
    max_bytes: int = 64 * 1024 * 1024
    backups: int = 3
    timeout_s: float = 5.0
    source: str = "clipper"
    namespace: str = "default"


def check_sink_available(config: PayloadLogConfig | None) -> None:
    """Raise InvalidRequest when the sink's optional dependency is not installed."""
    if config is not None and config.kind == "redis" and importlib.util.find_spec("redis") is None:
        raise InvalidRequest(
            "the redis payload sink needs the 'redis' package: pip install 'clipper-serving[redis]'"
        )


def open_sink(config: PayloadLogConfig, settings: SinkSettings) -> PayloadSink:
    """A sink for `config.sink` (validated by clipper.core.payload_config)."""
    if config.kind == "cloudevents":
        from clipper.payloads.cloudevents import CloudEventsSink

        return CloudEventsSink(config.sink.removeprefix("cloudevents:"), settings)
    if config.kind == "redis":
        from clipper.payloads.redis_stream import RedisStreamSink

        return RedisStreamSink(config.sink, settings)
    from clipper.payloads.jsonl import JsonlSink

    return JsonlSink(settings)
