"""What every frontend has with `frontends=2` (issue 26): the payload log (JSONL files of
its own, and a CloudEvents sink opened by each), OpenTelemetry spans exported by each and
naming it, the dashboard's summary and history counting both, containerless workers
serving both, and query tokens and TLS checked by both. Queries go on fresh connections,
so the kernel spreads them over the two frontends; each test checks both answered.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from clipper.artifacts.python import closure_artifact
from clipper.frontends.peer import ask_peer
from clipper.frontends.process import answering_frontend
from clipper.rpc.fanout import frontend_peer_path
from clipper.rpc.secret import SECRET_ENV, load_or_create_secret
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, free_port, wait_until

pytestmark = pytest.mark.integration

QUERIES = 40
COUNT = 2


def total(inputs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in inputs]


class Collector:
    """An OTLP/HTTP traces endpoint and a CloudEvents endpoint on 127.0.0.1: each span's
    (trace id, resource attributes), each event's headers."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, Any]]] = []
        self.events: list[dict[str, str]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    if self.headers.get("Content-Encoding") == "gzip":
                        body = gzip.decompress(body)
                    collector.accept(ExportTraceServiceRequest.FromString(body))
                    reply = ExportTraceServiceResponse().SerializeToString()
                else:
                    with collector.lock:
                        collector.events.append({k.lower(): v for k, v in self.headers.items()})
                    reply = b""
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accept(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource in request.resource_spans:
                attributes = {a.key: getattr(a.value, a.value.WhichOneof("value"))
                              for a in resource.resource.attributes}  # fmt: skip
                for scope in resource.scope_spans:
                    self.spans.extend((span.trace_id.hex(), attributes) for span in scope.spans)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.close()


@pytest.fixture(scope="module")
def server(module_server: ServerFactory, collector: Collector) -> ServerHandle:
    handle = module_server(
        "features", frontends=COUNT, otel_endpoint=collector.url, otel_sample_ratio=0.0,
        otel_export_delay_s=0.1, dashboard_sample_interval_s=0.2,
    )  # fmt: skip
    deploy(handle, "sum", total)
    return handle


def frontend_pids(server: ServerHandle) -> dict[int, int]:
    path = frontend_peer_path(server.state_dir, None)
    rows = asyncio.run(ask_peer(path, {"op": "stats"}))["frontends"]
    return {int(row["index"]): int(row["pid"]) for row in rows}


def fresh_predict(server: ServerHandle, app: str, value: float, **kwargs: Any) -> Any:
    """One query on a new connection (the kernel picks its frontend); its reply."""
    reply = httpx.post(f"{server.query_url}/{app}/predict", json={"input": [value]},
                       timeout=10, verify=server.verify, **kwargs)  # fmt: skip
    assert reply.status_code == 200, reply.text
    return reply.json()


def answered_by_both(query_ids: list[int]) -> bool:
    return {answering_frontend(query_id, COUNT) for query_id in query_ids} == {0, 1}


def jsonl_records(server: ServerHandle, app: str) -> dict[int, list[dict[str, Any]]]:
    """Each frontend's JSONL records of `app`, by frontend index."""
    found = {}
    for index in range(COUNT):
        path = server.state_dir / "payloads" / f"frontend-{index}" / f"{app}.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        found[index] = [json.loads(line) for line in lines]
    return found


def test_each_frontend_logs_its_answers_to_its_own_file_and_sink(
    server: ServerHandle, collector: Collector
) -> None:
    server.admin.add_app("logged", "doubles", "-1", 1_000_000, payload_log={"sink": "jsonl"})
    server.admin.add_model_links("logged", ["sum"])
    sink = {"sink": f"cloudevents:{collector.url}/events"}
    server.admin.add_app("evented", "doubles", "-1", 1_000_000, payload_log=sink)
    server.admin.add_model_links("evented", ["sum"])

    ids = [fresh_predict(server, "logged", float(i))["query_id"] for i in range(QUERIES)]
    evented = [fresh_predict(server, "evented", float(i))["query_id"] for i in range(QUERIES)]
    for query_id in ids[:10]:  # feedback on fresh connections: any frontend takes it
        update = httpx.post(f"{server.query_url}/logged/update",
                            json={"query_id": query_id, "reward": 1.0}, timeout=10)  # fmt: skip
        assert update.status_code == 200, update.text

    def logged() -> dict[int, list[dict[str, Any]]] | None:
        found = jsonl_records(server, "logged")
        count = sum(len(records) for records in found.values())
        return found if count >= QUERIES + 10 else None

    found = wait_until(logged, 15, "every query and feedback record")
    queries = {index: [r["query_id"] for r in records if r["kind"] == "query"]
               for index, records in found.items()}  # fmt: skip
    assert answered_by_both(ids)
    assert sorted(queries[0] + queries[1]) == sorted(ids)  # each once, in one file
    for index, query_ids in queries.items():  # a frontend's file holds its own answers
        assert {answering_frontend(query_id, COUNT) for query_id in query_ids} == {index}
    feedback = [r for records in found.values() for r in records if r["kind"] == "feedback"]
    assert sorted(r["query_id"] for r in feedback) == sorted(ids[:10])  # joined by query_id
    assert not (server.state_dir / "payloads" / "logged.jsonl").exists()

    def events() -> set[str] | None:
        with collector.lock:
            seen = {headers["ce-id"] for headers in collector.events}
        return seen if seen >= {str(query_id) for query_id in evented} else None

    wait_until(events, 15, "each frontend's CloudEvents")
    assert answered_by_both(evented)


def test_every_frontend_exports_spans_naming_itself(
    server: ServerHandle, collector: Collector
) -> None:
    traces = [secrets.token_hex(16) for _ in range(QUERIES)]
    for i, trace_id in enumerate(traces):
        headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        fresh_predict(server, "sum", float(i), headers=headers)

    def resources() -> list[dict[str, Any]] | None:
        with collector.lock:
            got = [attributes for trace_id, attributes in collector.spans if trace_id in traces]
            traced = {trace_id for trace_id, _ in collector.spans if trace_id in traces}
        return got if traced == set(traces) else None

    got = wait_until(resources, 15, "every query's spans")
    pids = frontend_pids(server)
    named = {(a["clipper.frontend.index"], a["process.pid"]) for a in got}
    assert named == {(index, pid) for index, pid in pids.items()}
    assert all(a["service.name"] == "clipper" and a["clipper.cluster"] == "features" for a in got)


def test_the_dashboard_summary_and_history_count_every_frontend(server: ServerHandle) -> None:
    server.admin.add_app("watched", "doubles", "-1", 1_000_000)
    server.admin.add_model_links("watched", ["sum"])
    ids = [fresh_predict(server, "watched", float(i))["query_id"] for i in range(QUERIES)]
    assert answered_by_both(ids)

    def summary() -> Any:
        reply = httpx.get(f"{server.admin_url}/admin/metrics_summary",
                          headers=server.admin_headers(), timeout=10).json()  # fmt: skip
        return reply["apps"].get("watched", {}).get("requests") == QUERIES and reply

    summarized = wait_until(summary, 10, "the summary of both frontends")
    assert summarized["models"]["sum:1"]["batch_inputs"] >= QUERIES

    def sampled() -> bool:
        history = httpx.get(f"{server.admin_url}/admin/metrics_history",
                            headers=server.admin_headers(), timeout=10).json()  # fmt: skip
        last = history["samples"][-1]["apps"].get("watched", {})
        return bool(last.get("requests") == QUERIES)

    assert wait_until(sampled, 10, "a history sample of both frontends")


def test_a_containerless_worker_dialling_both_frontends_serves_both(
    server: ServerHandle, tmp_path: Path
) -> None:
    server.admin.add_app("outside", "doubles", "-1", 1_000_000)
    server.admin.add_model("outside", "1", "doubles", containerless=True)
    server.admin.add_model_links("outside", ["outside"])
    artifact = tmp_path / "artifact"
    with tarfile.open(fileobj=io.BytesIO(closure_artifact(total))) as archive:
        archive.extractall(artifact, filter="data")
    listed = server.admin.status()["frontends"]
    dial = [flag for row in listed for flag in ("--frontend", row["rpc_address"])]
    worker = subprocess.Popen(
        [sys.executable, "-m", "clipper.worker",
         "--connect", f"tcp://127.0.0.1:{server.rpc_port}",
         "--model", "outside", "--version", "1", "--replica", "0",
         "--input-type", "doubles", "--artifact", str(artifact), *dial],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, SECRET_ENV: load_or_create_secret(server.state_dir)},
    )  # fmt: skip
    server.worker_pids.add(worker.pid)
    try:

        def served() -> list[Any] | None:
            replies = [fresh_predict(server, "outside", float(i)) for i in range(QUERIES // 2)]
            return None if any(reply["default"] for reply in replies) else replies

        try:
            replies = wait_until(served, 40, "the containerless worker on both frontends")
        except TimeoutError as exc:  # it failed once in CI: say what the worker said
            log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
            raise TimeoutError(f"{exc}; the worker's log:\n{log}") from None
        assert [reply["output"] for reply in replies] == [float(i) for i in range(QUERIES // 2)]
        assert answered_by_both([reply["query_id"] for reply in replies])
    finally:
        worker.terminate()
        worker.wait(10)


def test_query_tokens_and_tls_apply_on_both_frontends(configured_server: ServerFactory) -> None:
    secured = configured_server("secured", tls=True, frontends=COUNT)
    deploy(secured, "locked", total)
    flag = {"app_name": "locked", "require_query_token": True}
    secured.admin_http("set_app_query_auth", flag).raise_for_status()
    token = secured.admin_http("create_query_token", {"apps": ["locked"]}).json()["token"]

    refused = [
        httpx.post(f"{secured.query_url}/locked/predict", json={"input": [1.0]}, timeout=10,
                   verify=secured.verify).status_code
        for _ in range(QUERIES // 2)
    ]  # fmt: skip
    bearer = {"Authorization": f"Bearer {token}"}
    ids = [fresh_predict(secured, "locked", float(i), headers=bearer)["query_id"]
           for i in range(QUERIES // 2)]  # fmt: skip

    assert set(refused) == {401}
    assert answered_by_both(ids)
    for _ in range(6):  # plain HTTP is served by neither
        with pytest.raises(httpx.HTTPError):
            httpx.post(
                f"http://127.0.0.1:{secured.query_port}/locked/predict",
                json={"input": [1.0]},
                headers=bearer,
                timeout=5,
            ).raise_for_status()
