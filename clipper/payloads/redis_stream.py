"""Payload records on a Redis stream: `redis://HOST:PORT/STREAM` (`rediss://` for TLS, a
password as `redis://:PASSWORD@HOST:PORT/STREAM`, `?maxlen=N` to bound the stream, 100000 by
default, trimmed approximately: `XADD ... MAXLEN ~ N`). Each record is one entry whose fields
are the record's keys, each value JSON (`kind`, `query_id`, `input`, ...). Needs the
optional `redis` package (`pip install 'clipper-serving[redis]'`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis

from clipper.core.outputs import dumps_outputs
from clipper.payloads.sinks import SinkSettings

__all__ = ["DEFAULT_MAXLEN", "RedisStreamSink", "stream_fields"]

DEFAULT_MAXLEN = 100_000


def stream_fields(record: dict[str, Any]) -> dict[str, bytes]:
    """A record as one stream entry: each key a field, each value its JSON."""
    return {key: dumps_outputs(value) for key, value in record.items()}


class RedisStreamSink:
    """Adds each batch to the stream in one round trip (a pipeline of XADDs)."""

    kind = "redis"

    def __init__(self, url: str, settings: SinkSettings) -> None:
        parts = urlsplit(url)
        self.stream = unquote(parts.path.strip("/"))
        self._maxlen = int(parse_qs(parts.query).get("maxlen", [DEFAULT_MAXLEN])[0])
        self._client = aioredis.Redis(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ssl=parts.scheme == "rediss",
            socket_timeout=settings.timeout_s,
            socket_connect_timeout=settings.timeout_s,
        )

    async def write(self, log: str, records: list[dict[str, Any]]) -> None:
        """XADD every record, trimming the stream to about `maxlen` entries."""
        async with self._client.pipeline(transaction=False) as pipe:
            for record in records:
                pipe.xadd(
                    self.stream,
                    stream_fields(record),  # type: ignore[arg-type]
                    maxlen=self._maxlen,
                    approximate=True,
                )
            await pipe.execute()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.aclose()
