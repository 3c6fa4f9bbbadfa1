"""Payload records as CloudEvents over HTTP, in the shape KServe's inference logger sends
(binary content mode), so consumers written for it work unchanged.

A query record is two events with the same `ce-id` (the query id): its input as
`org.kubeflow.serving.inference.request` (data `{"input": ...}`, Clipper's predict body) and
the rest of the record as `org.kubeflow.serving.inference.response`. Feedback is one
`org.clipper.serving.inference.feedback` event. Each is one POST whose headers carry the
context attributes (`ce-specversion: 1.0`, `ce-id`, `ce-type`, `ce-source`, `ce-time`, and
KServe's extensions `ce-inferenceservicename` (the app; empty for a
query of a model version itself), `ce-namespace` (the cluster),
`ce-component: predictor`, `ce-endpoint: default`), and whose body is the JSON data.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from clipper.core.outputs import dumps_outputs
from clipper.payloads.sinks import SinkSettings

__all__ = ["FEEDBACK_TYPE", "REQUEST_TYPE", "RESPONSE_TYPE", "CloudEventsSink", "events_of"]

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
FEEDBACK_TYPE = "org.clipper.serving.inference.feedback"
MAX_CONCURRENT_POSTS = 8

Event = tuple[dict[str, str], bytes]
"""One event in binary mode: its headers and its body."""


def events_of(record: dict[str, Any], source: str, namespace: str) -> list[Event]:
    """The events of one record (two for a query, one for feedback)."""
    context = {
        "ce-specversion": "1.0",
        "ce-id": str(record.get("query_id")),
        "ce-source": source,
        "content-type": "application/json",
        "ce-inferenceservicename": str(record.get("app") or ""),
        "ce-namespace": namespace,
        "ce-component": "predictor",
        "ce-endpoint": "default",
    }
    if "time" in record:
        context["ce-time"] = record["time"]
    if record.get("kind") == "feedback":
        return [({**context, "ce-type": FEEDBACK_TYPE}, dumps_outputs(record))]
    data = {key: value for key, value in record.items() if key not in ("kind", "input")}
    request = {"input": record["input"]} if "input" in record else {}
    return [
        ({**context, "ce-type": REQUEST_TYPE}, dumps_outputs(request)),
        ({**context, "ce-type": RESPONSE_TYPE}, dumps_outputs(data)),
    ]


class CloudEventsSink:
    """POSTs each record's events to one URL, a few at a time, over one connection pool."""

    kind = "cloudevents"

    def __init__(self, url: str, settings: SinkSettings) -> None:
        self._url = url
        self._source = settings.source
        self._namespace = settings.namespace
        self._client = httpx.AsyncClient(timeout=settings.timeout_s)
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_POSTS)

    async def write(self, log: str, records: list[dict[str, Any]]) -> None:
        """Send every event; raise if any was refused (a non-2xx answer) or not delivered."""
        events = [
            event
            for record in records
            for event in events_of(record, f"{self._source}/{log}/predict", self._namespace)
        ]
        await asyncio.gather(*(self._post(headers, body) for headers, body in events))

    async def _post(self, headers: dict[str, str], body: bytes) -> None:
        async with self._slots:
            response = await self._client.post(self._url, content=body, headers=headers)
        response.raise_for_status()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
