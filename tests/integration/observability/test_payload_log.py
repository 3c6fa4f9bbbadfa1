"""Payload logging (issue 25, item 3) against real sinks: the JSONL files in the state
directory (rotated by size), a CloudEvents receiver started here (KServe's logger shape), and
a real Redis (Debian's redis-server, started here on a free port) that is stalled and then
killed under load while queries keep their latency and the dropped records are counted."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from clipper.artifacts.python import closure_artifact
from clipper.core.exceptions import InvalidRequest
from tests.integration.cluster import (
    ServerFactory,
    ServerHandle,
    deploy,
    free_port,
    metric,
    wait_until,
)

pytestmark = pytest.mark.integration

MAX_BYTES = 4096
BACKUPS = 2
BUFFER = 50
TIMEOUT_S = 1.0


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    handle = module_server(
        "payloads", payload_log_max_bytes=MAX_BYTES, payload_log_backups=BACKUPS,
        payload_log_buffer=BUFFER, payload_log_timeout_s=TIMEOUT_S,
    )  # fmt: skip
    deploy(handle, "sum", feature_sum)
    return handle


def add_app(server: ServerHandle, name: str, payload_log: dict[str, Any] | None) -> None:
    """An app answered by the model `sum`, logging as `payload_log` says."""
    server.admin.add_app(name, "doubles", "-1", 1_000_000, payload_log=payload_log)
    server.admin.add_model_links(name, ["sum"])


def records(server: ServerHandle, app: str) -> list[dict[str, Any]]:
    """The app's records, oldest first, from its rotated copies too."""
    directory = server.state_dir / "payloads"
    paths = [directory / f"{app}.jsonl.{i}" for i in range(BACKUPS, 0, -1)]
    return [json.loads(line) for path in [*paths, directory / f"{app}.jsonl"] if path.exists()
            for line in path.read_text().splitlines()]  # fmt: skip


def test_jsonl_records_each_query_with_its_feedback_joined_by_query_id(
    server: ServerHandle,
) -> None:
    add_app(server, "logged", {"sink": "jsonl"})
    single = server.predict("logged", {"input": [1.0, 2.0]}).json()
    batch = server.predict("logged", {"input_batch": [[3.0], [4.0, 5.0]]}).json()
    ids = [single["query_id"], *(p["query_id"] for p in batch["batch_predictions"])]
    logged = wait_until(lambda: len(records(server, "logged")) >= 3 and records(server, "logged"),
                        10, "three query records")  # fmt: skip
    by_id = {record["query_id"]: record for record in logged}
    assert sorted(by_id) == sorted(ids)
    first = by_id[single["query_id"]]
    assert first["kind"] == "query"
    assert first["app"] == "logged"
    assert first["input"] == [1.0, 2.0]
    assert first["output"] == 3.0
    assert first["models"] == ["sum:1"]
    assert first["default"] is False
    assert first["explanation"] is None
    assert first["latency_ms"] > 0
    assert datetime.fromisoformat(first["time"].replace("Z", "+00:00")).tzinfo is not None
    assert by_id[ids[2]]["input"] == [4.0, 5.0]
    assert by_id[ids[2]]["output"] == 9.0

    update = httpx.post(f"{server.query_url}/logged/update",
                        json={"query_id": ids[0], "label": 3.0}, timeout=10)  # fmt: skip
    assert update.status_code == 200, update.text
    feedback = wait_until(
        lambda: [r for r in records(server, "logged") if r["kind"] == "feedback"], 10, "feedback"
    )
    assert feedback[0]["query_id"] == ids[0]
    assert feedback[0]["feedback"]["label"] == 3.0
    assert metric(server, "clipper_payload_log_records_total", app="logged", sink="jsonl") == 4

    v2 = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 2], "data": [6.0, 1.0]}]}
    answer = httpx.post(f"{server.query_url}/v2/models/logged/infer", json=v2, timeout=10)
    assert answer.status_code == 200, answer.text
    wait_until(lambda: len(records(server, "logged")) == 5, 10, "the V2 query's record")
    assert records(server, "logged")[-1]["input"] == [6.0, 1.0]


def test_jsonl_rotates_by_size_keeping_its_backups(server: ServerHandle) -> None:
    add_app(server, "rotated", {"sink": "jsonl", "fields": ["input", "output"]})
    with httpx.Client(base_url=server.query_url, timeout=10) as client:
        for index in range(300):  # about 60 bytes a record: over four files' worth
            answer = client.post("/rotated/predict", json={"input": [float(index), 1.0]})
            assert answer.status_code == 200
    wait_until(lambda: metric(server, "clipper_payload_log_records_total", app="rotated",
                              sink="jsonl") == 300, 10, "every record written")  # fmt: skip
    directory = server.state_dir / "payloads"
    files = sorted(directory.glob("rotated.jsonl*"))
    assert [f.name for f in files] == ["rotated.jsonl", "rotated.jsonl.1", "rotated.jsonl.2"]
    assert all(0 < f.stat().st_size <= MAX_BYTES for f in files)
    newest = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert newest[-1]["input"] == [299.0, 1.0]
    assert set(newest[-1]) == {"kind", "query_id", "input", "output"}  # the fields asked


def test_sample_zero_logs_nothing_and_one_logs_everything(server: ServerHandle) -> None:
    add_app(server, "never", {"sink": "jsonl", "sample": 0})
    add_app(server, "always", {"sink": "jsonl", "sample": 1})
    for index in range(20):
        server.predict("never", {"input": [float(index)]})
        server.predict("always", {"input": [float(index)]})
    wait_until(lambda: len(records(server, "always")) == 20, 10, "20 records of 'always'")
    # Both apps share one writer, which wrote 'always' after each 'never' query: nothing.
    assert records(server, "never") == []
    assert metric(server, "clipper_payload_log_records_total", app="never", sink="jsonl") == 0


def test_payload_log_set_later_shown_validated_and_turned_off(server: ServerHandle) -> None:
    add_app(server, "later", None)
    assert server.admin.get_application("later")["payload_log"] is None
    for bad, why in (
        ({"sink": "kafka://x"}, "payload_log.sink"),
        ({"sink": "jsonl", "sample": 1.5}, "sample"),
        ({"fields": ["inputs"]}, "unknown ['inputs']"),
        ({"sink": "redis://127.0.0.1:1/"}, "names the stream"),
        ({"sink": "jsonl", "rate": 1}, "unknown keys"),
    ):
        with pytest.raises(InvalidRequest, match=why.replace("[", r"\[").replace("]", r"\]")):
            server.admin.set_payload_log("later", bad)
    stored = server.admin.set_payload_log("later", {"sample": 0.5, "fields": ["output"]})
    assert stored["payload_log"] == {"sink": "jsonl", "sample": 0.5, "fields": ["output"]}
    assert server.admin.get_application("later")["payload_log"] == stored["payload_log"]
    command = [sys.executable, "-m", "clipper.cli", "set-payload-log", "later", "--off",
               *server.cli_flags()]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "payload log off" in result.stdout
    assert server.admin.get_application("later")["payload_log"] is None


def feature_max(xs: list[Any]) -> list[float]:
    return [float(max(x)) for x in xs]


def model_records(server: ServerHandle, name: str, version: str) -> list[dict[str, Any]]:
    path = server.state_dir / "payloads" / "models" / name / f"{version}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_versions_log_records_every_query_it_answered_and_an_ensemble_each_output(
    server: ServerHandle,
) -> None:
    admin = server.admin
    admin.upload_artifact("maxer", "1", closure_artifact(feature_max))
    admin.add_model("maxer", "1", "doubles", num_replicas=1, payload_log={"sink": "jsonl"})
    admin.wait_model_ready("maxer", "1")
    assert admin.get_model("maxer", "1")["payload_log"]["sink"] == "jsonl"  # type: ignore[index]
    admin.add_app("ens", "doubles", "-1", 1_000_000, policy="exp4", payload_log={"sink": "jsonl"})
    admin.add_model_links("ens", ["sum", "maxer"])
    add_app(server, "unasked", None)  # answered by `sum` only: not in maxer's log
    admin.add_app("solo", "doubles", "-1", 1_000_000)
    admin.add_model_links("solo", ["maxer"])

    both = server.predict("ens", {"input": [1.0, 5.0]}).json()
    solo = server.predict("solo", {"input": [2.0, 3.0]}).json()
    server.predict("unasked", {"input": [7.0]})
    v2 = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 2], "data": [4.0, 1.0]}]}
    direct = httpx.post(f"{server.query_url}/v2/models/maxer/infer", json=v2, timeout=10)
    assert direct.status_code == 200, direct.text

    logged = wait_until(lambda: len(model_records(server, "maxer", "1")) >= 3
                        and model_records(server, "maxer", "1"), 10, "maxer's records")  # fmt: skip
    assert [(r["app"], r["input"]) for r in logged] == [
        ("ens", [1.0, 5.0]), ("solo", [2.0, 3.0]), (None, [4.0, 1.0]),
    ]  # fmt: skip
    ensemble, alone, itself = logged
    assert ensemble["query_id"] == both["query_id"]
    assert sorted(ensemble["models"]) == ["maxer:1", "sum:1"]
    assert ensemble["outputs"] == {"sum:1": 6.0, "maxer:1": 5.0}
    assert ensemble["output"] == both["output"]
    assert (alone["query_id"], alone["models"], alone["outputs"]) == (
        solo["query_id"], ["maxer:1"], None,
    )  # fmt: skip
    assert (itself["output"], itself["models"]) == (4.0, ["maxer:1"])
    [app_record] = wait_until(lambda: records(server, "ens"), 10, "ens's record")
    assert app_record["outputs"] == ensemble["outputs"]
    assert app_record["partial"] is False
    assert metric(server, "clipper_payload_log_records_total", model="maxer:1", sink="jsonl") == 3

    # A version deployed without payload_log logs as the current one did; --off stops it.
    admin.add_model("maxer", "2", "doubles", containerless=True)
    assert admin.get_model("maxer", "2")["payload_log"]["sink"] == "jsonl"  # type: ignore[index]
    command = [sys.executable, "-m", "clipper.cli", "set-payload-log", "--model", "maxer",
               "--off", *server.cli_flags()]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "Model maxer:2: payload log off" in result.stdout
    assert admin.get_model("maxer", "2")["payload_log"] is None  # type: ignore[index]
    stored = admin.set_model_payload_log("maxer", {"sample": 0}, model_version=1)
    assert stored["payload_log"]["sample"] == 0.0


class _Receiver(BaseHTTPRequestHandler):
    events: list[tuple[dict[str, str], Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.events.append((headers, json.loads(body)))
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], Any]]]]:
    """A CloudEvents receiver on 127.0.0.1: its URL and the events it got."""
    events: list[tuple[dict[str, str], Any]] = []
    handler = type("Handler", (_Receiver,), {"events": events})
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/events", events
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_cloudevents_sink_posts_kserve_shaped_events(
    server: ServerHandle, receiver: tuple[str, list[tuple[dict[str, str], Any]]]
) -> None:
    url, events = receiver
    add_app(server, "evented", {"sink": f"cloudevents:{url}"})
    reply = server.predict("evented", {"input": [2.0, 5.0]}).json()
    wait_until(lambda: len(events) >= 2, 10, "two CloudEvents")
    by_type = {headers["ce-type"]: (headers, body) for headers, body in events}
    request_headers, request_body = by_type["org.kubeflow.serving.inference.request"]
    response_headers, response_body = by_type["org.kubeflow.serving.inference.response"]
    for headers in (request_headers, response_headers):
        assert headers["ce-specversion"] == "1.0"
        assert headers["ce-id"] == str(reply["query_id"])
        assert headers["ce-source"] == f"http://127.0.0.1:{server.query_port}/evented/predict"
        assert headers["ce-inferenceservicename"] == "evented"
        assert headers["content-type"] == "application/json"
        assert headers["ce-time"].endswith("Z")
    assert request_body == {"input": [2.0, 5.0]}
    assert response_body["output"] == 7.0
    assert response_body["models"] == ["sum:1"]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Debian's redis-server on a free port, no persistence; its port and process."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        wait_until(lambda: _pings(client), 10, "redis-server to answer")
        yield port, process
    finally:
        client.close()
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        process.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_redis_stream_receives_records(
    server: ServerHandle, redis_server: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port, _ = redis_server
    add_app(server, "streamed", {"sink": f"redis://127.0.0.1:{port}/clipper-payloads"})
    reply = server.predict("streamed", {"input": [4.0, 4.0]}).json()
    client = redis.Redis(port=port, socket_timeout=5)
    entries = wait_until(lambda: client.xrange("clipper-payloads"), 10, "a stream entry")
    [(_, fields)] = entries
    record = {key.decode(): json.loads(value) for key, value in fields.items()}
    assert record["kind"] == "query"
    assert record["query_id"] == reply["query_id"]
    assert record["app"] == "streamed"
    assert record["input"] == [4.0, 4.0]
    assert record["output"] == 8.0
    assert record["default"] is False
    client.close()


def test_a_stalled_then_stopped_redis_drops_and_counts_records_never_slowing_queries(
    server: ServerHandle, redis_server: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port, process = redis_server
    add_app(server, "stalled", {"sink": f"redis://127.0.0.1:{port}/stalled"})
    phases: dict[str, list[float]] = {"before": [], "stalled": [], "stopped": []}
    with httpx.Client(base_url=server.query_url, timeout=10) as client:
        sent = 0

        def load(phase: str, seconds: float) -> None:
            nonlocal sent
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                sent += 1
                started = time.monotonic()
                answer = client.post("/stalled/predict", json={"input": [float(sent)]})
                phases[phase].append(time.monotonic() - started)
                assert answer.status_code == 200
                assert answer.json()["default"] is False

        load("before", 1.5)
        os.kill(process.pid, signal.SIGSTOP)  # Redis hangs: its socket accepts, never answers
        load("stalled", 3 * TIMEOUT_S)
        os.kill(process.pid, signal.SIGCONT)
        process.kill()  # now Redis is gone: connections refused
        process.wait(10)
        load("stopped", 1.5)
    assert metric(server, "clipper_payload_log_records_total", app="stalled", sink="redis") > 0
    assert metric(server, "clipper_payload_log_dropped_total", app="stalled",
                  reason="buffer_full") > 0  # fmt: skip

    def failed_writes() -> float:
        return sum(metric(server, "clipper_payload_log_dropped_total", app="stalled", reason=why)
                   for why in ("sink_error", "sink_timeout"))  # fmt: skip

    failed = wait_until(failed_writes, 10, "failed writes counted")
    assert failed > 0
    baseline = statistics.median(phases["before"])
    for phase in ("stalled", "stopped"):
        latencies = phases[phase]
        assert len(latencies) > 50, phase
        # A query that waited for the sink would take the sink's timeout (1 s) or more; a
        # loaded 2-core machine can pause any one query for a few hundred milliseconds.
        assert max(latencies) < 0.9 * TIMEOUT_S, (phase, max(latencies))
        assert statistics.median(latencies) < 3 * baseline + 0.02, (phase, baseline)
    assert metric(server, "clipper_payload_log_buffered", app="stalled") <= BUFFER
