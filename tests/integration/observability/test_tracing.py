"""OpenTelemetry traces of the query path (issue 25, items 1 and 2): a server exporting over
OTLP/HTTP to a receiver started here (decoded with opentelemetry-proto), queried with the
caller's W3C `traceparent` over Clipper's REST API (predict and feedback), the V2 REST API
and gRPC; the trees are checked span by span. A server without an endpoint never imports
OpenTelemetry."""

from __future__ import annotations

import gzip
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until

pytestmark = pytest.mark.integration

EXPORT_DELAY_S = 0.1


@dataclass(frozen=True)
class SpanRecord:
    """One exported span, as the receiver decoded it (ids in lower-case hex)."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    links: list[tuple[str, str]] = field(default_factory=list)
    trace_state: str = ""


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


class Receiver:
    """An OTLP/HTTP traces endpoint on 127.0.0.1: POST /v1/traces, protobuf bodies."""

    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                ok = self.path == "/v1/traces"
                if ok:
                    receiver.accept(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accept(self, request: ExportTraceServiceRequest) -> None:
        spans = [
            SpanRecord(
                span.name,
                span.trace_id.hex(),
                span.span_id.hex(),
                span.parent_span_id.hex(),
                span.start_time_unix_nano,
                span.end_time_unix_nano,
                {a.key: _value(a.value) for a in span.attributes},
                [(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                span.trace_state,
            )
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        with self.lock:
            self.spans.extend(spans)

    def trace(self, trace_id: str) -> list[SpanRecord]:
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def wait_for(self, trace_id: str, *names: str) -> list[SpanRecord]:
        """The trace's spans once one of each name (prefix) has arrived."""

        def complete() -> list[SpanRecord] | None:
            spans = self.trace(trace_id)
            arrived = all(any(s.name.startswith(n) for s in spans) for n in names)
            return spans if arrived else None

        try:
            spans: list[SpanRecord] = wait_until(complete, 10, f"spans {names} of {trace_id}")
        except TimeoutError as exc:
            arrived = [(s.name, s.span_id, s.parent_id) for s in self.trace(trace_id)]
            raise AssertionError(f"{exc}; arrived: {arrived}") from None
        return spans

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


def feature_max(xs: list[Any]) -> list[float]:
    return [float(max(x)) for x in xs]


@pytest.fixture(scope="module")
def server(module_server: ServerFactory, receiver: Receiver) -> ServerHandle:
    handle = module_server(
        "traced", otel_endpoint=receiver.url, otel_sample_ratio=1.0,
        otel_export_delay_s=EXPORT_DELAY_S,
    )  # fmt: skip
    deploy(handle, "sum", feature_sum)
    return handle


def fresh_input() -> list[float]:
    """An input no earlier query sent (the cache would answer it without a batch)."""
    return [float(secrets.randbelow(10**9)), 1.0]


def caller() -> tuple[str, str, str]:
    """A caller's (trace id, span id, traceparent), sampled."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def by_name(spans: list[SpanRecord], prefix: str) -> list[SpanRecord]:
    return [span for span in spans if span.name.startswith(prefix)]


def one(spans: list[SpanRecord], prefix: str) -> SpanRecord:
    found = by_name(spans, prefix)
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def check_model_subtree(spans: list[SpanRecord], request: SpanRecord, model: str) -> None:
    """A model span under the request, its queue wait, and its batch: linked to it, with
    its size, the compute inside it."""
    (asked,) = [s for s in by_name(spans, "model ") if s.attributes["clipper.model"] == model]
    assert asked.parent_id == request.span_id
    assert asked.attributes["clipper.version"] == "1"
    assert one([s for s in spans if s.parent_id == asked.span_id], "clipper.queue_wait")
    batch = one([s for s in spans if s.parent_id == asked.span_id], "batch ")
    assert (asked.trace_id, asked.span_id) in batch.links
    assert batch.attributes["clipper.batch_size"] >= 1
    assert batch.attributes["clipper.model"] == model
    compute = one([s for s in spans if s.parent_id == batch.span_id], "clipper.compute")
    assert batch.start_ns <= compute.start_ns <= compute.end_ns <= batch.end_ns
    assert request.start_ns <= asked.start_ns <= asked.end_ns <= request.end_ns


def test_a_rest_query_joins_the_callers_trace_and_shows_its_batch(
    server: ServerHandle, receiver: Receiver
) -> None:
    trace_id, span_id, parent = caller()
    features = fresh_input()

    reply = server.predict("sum", {"input": features}, headers={"traceparent": parent})

    assert reply.json()["output"] == sum(features)
    assert reply.headers["traceparent"].split("-")[1] == trace_id
    spans = receiver.wait_for(trace_id, "POST", "batch", "clipper.compute", "model")
    request = one(spans, "POST /{app}/predict")
    assert request.parent_id == span_id
    assert reply.headers["traceparent"].split("-")[2] == request.span_id
    assert request.attributes["clipper.app"] == "sum"
    assert request.attributes["clipper.model"] == "sum"
    assert request.attributes["clipper.version"] == "1"
    assert request.attributes["clipper.default"] is False
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["http.request.method"] == "POST"
    children = {s.name for s in spans if s.parent_id == request.span_id}
    assert {"clipper.decode", "clipper.reply", "model sum:1"} <= children
    check_model_subtree(spans, request, "sum")
    assert one(spans, "model ").attributes["clipper.cache"] == "miss"


def test_a_cache_hit_is_a_model_span_without_a_batch(
    server: ServerHandle, receiver: Receiver
) -> None:
    features = fresh_input()
    server.predict("sum", {"input": features})
    trace_id, _, parent = caller()

    server.predict("sum", {"input": features}, headers={"traceparent": parent})

    spans = receiver.wait_for(trace_id, "POST", "model")
    assert one(spans, "model ").attributes["clipper.cache"] == "hit"
    assert not by_name(spans, "batch")


def test_feedback_joins_the_callers_trace(server: ServerHandle, receiver: Receiver) -> None:
    server.admin.add_app("learns", "doubles", default_output="-1",
                         latency_slo_micros=1_000_000, policy="exp4")  # fmt: skip
    server.admin.add_model_links("learns", ["sum"])
    answer = server.predict("learns", {"input": fresh_input()}).json()
    by_id, by_input = caller(), caller()

    replies = [
        httpx.post(f"{server.query_url}/learns/update", headers={"traceparent": parent},
                   json=body, timeout=10)
        for (_, _, parent), body in (
            (by_id, {"query_id": answer["query_id"], "label": 1.0}),
            (by_input, {"input": fresh_input(), "label": 1.0}),  # the models are asked
        )
    ]  # fmt: skip

    for (trace_id, span_id, _), reply in zip((by_id, by_input), replies, strict=True):
        assert reply.status_code == 200, reply.text
        assert reply.headers["traceparent"].split("-")[1] == trace_id
        spans = receiver.wait_for(trace_id, "POST /{app}/update")
        update = one(spans, "POST /{app}/update")
        assert update.parent_id == span_id
        assert reply.headers["traceparent"].split("-")[2] == update.span_id
        assert update.attributes["clipper.app"] == "learns"
        assert update.attributes["http.route"] == "/{app}/update"
        assert update.attributes["http.response.status_code"] == 200
        assert "clipper.default" not in update.attributes
        assert not by_name(spans, "clipper.decode")
    spans = receiver.wait_for(by_input[0], "POST /{app}/update", "model sum", "batch sum")
    check_model_subtree(spans, one(spans, "POST /{app}/update"), "sum")


def test_a_v2_rest_query_is_traced_too(server: ServerHandle, receiver: Receiver) -> None:
    trace_id, span_id, parent = caller()
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 2],
                        "data": fresh_input()}]}  # fmt: skip

    headers = {"traceparent": parent, "tracestate": "vendor=1"}

    reply = httpx.post(f"{server.query_url}/v2/models/sum/infer", json=body, headers=headers)

    assert reply.status_code == 200, reply.text
    assert reply.headers["traceparent"].split("-")[1] == trace_id
    spans = receiver.wait_for(trace_id, "POST", "batch", "model")
    request = one(spans, "POST /v2/models/{name}/infer")
    assert request.parent_id == span_id
    assert {s.trace_state for s in spans} == {"vendor=1"}  # the caller's, on every span
    assert request.attributes["url.path"] == "/v2/models/sum/infer"
    check_model_subtree(spans, request, "sum")


def test_a_grpc_query_joins_the_callers_trace(server: ServerHandle, receiver: Receiver) -> None:
    trace_id, span_id, parent = caller()
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    tensor = grpcclient.InferInput("input", [1, 2], "FP64")
    features = fresh_input()
    tensor.set_data_from_numpy(np.array([features]))

    result = client.infer("sum", [tensor], headers={"traceparent": parent})

    assert result.as_numpy("output").tolist() == [sum(features)]
    spans = receiver.wait_for(trace_id, "inference.", "batch", "model")
    request = one(spans, "inference.GRPCInferenceService/ModelInfer")
    assert request.parent_id == span_id
    assert request.attributes["rpc.system"] == "grpc"
    assert request.attributes["rpc.method"] == "ModelInfer"
    assert request.attributes["rpc.grpc.status_code"] == 0
    assert request.attributes["clipper.app"] == "sum"
    check_model_subtree(spans, request, "sum")
    client.close()


def test_an_ensemble_shows_one_child_per_model_asked(
    server: ServerHandle, receiver: Receiver
) -> None:
    deploy(server, "max", feature_max, link=False)
    server.admin.add_app("both", "doubles", default_output="-1",
                         latency_slo_micros=1_000_000, policy="exp4")  # fmt: skip
    server.admin.add_model_links("both", ["sum", "max"])
    trace_id, _, parent = caller()

    reply = server.predict("both", {"input": fresh_input()}, headers={"traceparent": parent})

    assert sorted(reply.json()["models"]) == ["max:1", "sum:1"]
    spans = receiver.wait_for(trace_id, "POST", "model sum", "model max", "batch max", "batch sum")
    request = one(spans, "POST /{app}/predict")
    assert sorted(request.attributes["clipper.models"]) == ["max:1", "sum:1"]
    check_model_subtree(spans, request, "sum")
    check_model_subtree(spans, request, "max")


def test_ratio_zero_exports_only_what_a_caller_sampled(
    configured_server: ServerFactory, receiver: Receiver
) -> None:
    handle = configured_server(
        "unsampled", otel_endpoint=receiver.url, otel_sample_ratio=0.0,
        otel_export_delay_s=EXPORT_DELAY_S,
    )  # fmt: skip
    deploy(handle, "sum", feature_sum)
    with receiver.lock:
        before = len(receiver.spans)
    unsampled = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"

    plain = [handle.predict("sum", {"input": [float(i)]}) for i in range(5)]
    declined = handle.predict("sum", {"input": [9.0]}, headers={"traceparent": unsampled})
    trace_id, _, parent = caller()
    handle.predict("sum", {"input": fresh_input()}, headers={"traceparent": parent})

    assert all("traceparent" not in reply.headers for reply in [*plain, declined])
    receiver.wait_for(trace_id, "POST", "batch")  # exported after the queries before it
    with receiver.lock:
        exported = receiver.spans[before:]
    assert {span.trace_id for span in exported} == {trace_id}


def test_a_server_without_an_endpoint_never_imports_opentelemetry(
    configured_server: ServerFactory,
) -> None:
    handle = configured_server("untraced")
    deploy(handle, "sum", feature_sum)
    reply = handle.predict("sum", {"input": [1.0]}, headers={"traceparent": caller()[2]})

    status = handle.admin.status()
    assert reply.status_code == 200
    assert "traceparent" not in reply.headers
    assert (status["tracing"], status["opentelemetry_loaded"]) == (False, False)
