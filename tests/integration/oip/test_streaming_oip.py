"""Streaming models through the Open Inference Protocol (issue 24): Triton's generate and
generate_stream over HTTP (httpx: tritonclient's HTTP client has no generate_stream), and
ModelStreamInfer through tritonclient's own gRPC stream, with pieces arriving over time,
the decoupled flag in the model config, and errors in each transport's shape.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until
from tests.integration.query.test_streaming import PIECES, counting_stream, steps

STEP_S = 0.08
WORDS = "one two three four"


def words(inputs: list[str]) -> Iterator[str]:
    """strings, streaming: each word of the text, STEP_S apart."""
    for word in inputs[0].split():
        time.sleep(STEP_S)
        yield word + " "


def breaks(inputs: list[str]) -> Iterator[str]:
    """strings, streaming: one piece, then the model raises."""
    yield "first "
    time.sleep(STEP_S)
    raise ValueError("broken mid-stream")


def shout(inputs: list[str]) -> list[str]:
    """strings, not streaming."""
    return [text.upper() for text in inputs]


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oip-stream") / "steps"


@pytest.fixture(scope="module")
def server(module_server: ServerFactory, counter: Path) -> ServerHandle:
    handle = module_server("oip-stream")
    deploy(handle, "counting", counting_stream(str(counter)), input_type="strings")
    deploy(handle, "words", words, input_type="strings", slo_us=2_000_000)
    deploy(handle, "breaks", breaks, input_type="strings", slo_us=2_000_000)
    deploy(handle, "plain", shout, input_type="strings")
    return handle


def sse_events(server: ServerHandle, model: str, body: dict[str, Any]) -> list[tuple[float, Any]]:
    """(arrival time, data) per event of a generate_stream request."""
    url = f"{server.query_url}/v2/models/{model}/generate_stream"
    events = []
    with httpx.Client(timeout=10) as client, client.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append((time.monotonic(), orjson.loads(line[len("data: ") :])))
    return events


def test_generate_answers_the_pieces_joined(server: ServerHandle) -> None:
    url = f"{server.query_url}/v2/models/words/generate"
    reply = httpx.post(url, json={"text_input": WORDS, "id": "r1"}, timeout=10)
    assert reply.status_code == 200
    assert reply.json() == {
        "id": "r1",
        "model_name": "words",
        "model_version": "1",
        "text_output": "one two three four ",
    }
    by_input_name = httpx.post(url, json={"input": "a b"}, timeout=10).json()
    assert by_input_name["output"] == "a b "  # the signature's names when not Triton's


def test_generate_stream_sends_each_piece_as_it_comes(server: ServerHandle) -> None:
    events = sse_events(server, "words", {"text_input": WORDS})
    assert [data["text_output"] for _, data in events] == ["one ", "two ", "three ", "four "]
    assert all(data["model_name"] == "words" for _, data in events)
    assert events[-1][0] - events[0][0] >= 2 * STEP_S  # the first came well before the last


def test_generate_stream_of_a_plain_model_is_one_event(server: ServerHandle) -> None:
    [(_, data)] = sse_events(server, "plain", {"text_input": "hi"})
    assert data["text_output"] == "HI"


def test_generate_stream_bounded_by_max_pieces(server: ServerHandle) -> None:
    events = sse_events(server, "words", {"text_input": WORDS, "parameters": {"max_pieces": 2}})
    assert [data["text_output"] for _, data in events] == ["one ", "two "]


def test_an_error_mid_stream_is_the_last_event(server: ServerHandle) -> None:
    events = sse_events(server, "breaks", {"text_input": "x"})
    assert events[0][1]["text_output"] == "first "
    assert events[-1][1]["code"] == "ModelError"
    assert "error" in events[-1][1]
    assert len(events) == 2


def test_a_request_refused_before_streaming_is_a_json_error(server: ServerHandle) -> None:
    url = f"{server.query_url}/v2/models/nope/generate_stream"
    reply = httpx.post(url, json={"text_input": "x"}, timeout=10)
    assert reply.status_code == 404
    assert reply.json()["code"] == "ModelNotFound"
    bad = httpx.post(f"{server.query_url}/v2/models/words/generate", json={"x": 1}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["code"] == "InvalidInput"


def test_the_model_config_marks_streaming_models_decoupled(server: ServerHandle) -> None:
    http = httpclient.InferenceServerClient(f"127.0.0.1:{server.query_port}")
    assert http.get_model_config("words")["model_transaction_policy"] == {"decoupled": True}
    assert http.get_model_config("plain")["model_transaction_policy"] == {"decoupled": False}
    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    config = grpc.get_model_config("words", as_json=True)["config"]
    assert config["model_transaction_policy"] == {"decoupled": True}
    assert config["input"][0]["data_type"] == "TYPE_STRING"
    assert "generate" in http.get_server_metadata()["extensions"]


def stream_results(
    server: ServerHandle, model: str, texts: list[str], **options: Any
) -> list[tuple[float, Any, Any]]:
    """(arrival time, result, error) per response of one tritonclient gRPC stream."""
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    arrived: queue.Queue[tuple[float, Any, Any]] = queue.Queue()
    client.start_stream(lambda result, error: arrived.put((time.monotonic(), result, error)))
    try:
        for index, text in enumerate(texts):
            tensor = grpcclient.InferInput("input", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([text.encode()], dtype=np.object_))
            client.async_stream_infer(model, [tensor], request_id=f"q{index}", **options)
        results = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                results.append(arrived.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
            if _finished(results, len(texts), options):
                break
        return results
    finally:
        client.stop_stream(cancel_requests=True)
        client.close()


def _finished(results: list[Any], requests: int, options: dict[str, Any]) -> bool:
    """Every request has its last response: an error, or (when asked for) the final flag."""
    final_asked = options.get("enable_empty_final_response", False)
    finals = sum(
        1 for _, result, error in results if error is not None or (final_asked and _final(result))
    )
    return finals >= requests


def _final(result: Any) -> bool:
    return bool(result.get_response().parameters["triton_final_response"].bool_param)


def _text(result: Any) -> str:
    output = result.as_numpy("output")
    return "" if output is None else output[0].decode()


def test_stream_infer_sends_a_response_per_piece_then_the_final_flag(server: ServerHandle) -> None:
    results = stream_results(server, "words", [WORDS], enable_empty_final_response=True)
    assert all(error is None for _, _, error in results)
    flags = [_final(result) for _, result, _ in results]
    assert flags == [False, False, False, False, True]
    assert [_text(result) for _, result, _ in results[:4]] == ["one ", "two ", "three ", "four "]
    assert results[-1][1].get_response().id == "q0"
    assert results[3][0] - results[0][0] >= 2 * STEP_S  # pieces arrived over time


def test_stream_infer_answers_requests_of_one_stream_concurrently(server: ServerHandle) -> None:
    results = stream_results(server, "words", ["a b c", "d e f"], enable_empty_final_response=True)
    by_id: dict[str, list[str]] = {}
    for _, result, error in results:
        assert error is None
        response = result.get_response()
        if not _final(result):
            by_id.setdefault(response.id, []).append(_text(result))
    assert by_id == {"q0": ["a ", "b ", "c "], "q1": ["d ", "e ", "f "]}


def test_stream_infer_of_a_plain_model_is_one_final_response(server: ServerHandle) -> None:
    [(_, result, error)] = stream_results(server, "plain", ["hi"], enable_empty_final_response=True)
    assert error is None
    assert _text(result) == "HI"
    assert _final(result)


def test_stream_infer_errors_are_error_messages(server: ServerHandle) -> None:
    results = stream_results(server, "breaks", ["x"])
    assert _text(results[0][1]) == "first "
    (_, _, error) = results[-1]
    assert error is not None
    assert "ModelError" in error.message()
    [(_, _, unknown)] = stream_results(server, "nope", ["x"])
    assert unknown is not None
    assert "ModelNotFound" in unknown.message()


def test_a_cancelled_grpc_stream_stops_the_model_within_one_step(
    server: ServerHandle, counter: Path
) -> None:
    wait_until(lambda: steps(counter) % PIECES == 0, 5, "earlier streams done")
    before = steps(counter)
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    arrived: queue.Queue[Any] = queue.Queue()
    client.start_stream(lambda result, error: arrived.put((result, error)))
    tensor = grpcclient.InferInput("input", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([b"x"], dtype=np.object_))
    client.async_stream_infer("counting", [tensor])
    try:
        for _ in range(2):
            _, error = arrived.get(timeout=10)
            assert error is None
    finally:
        client.stop_stream(cancel_requests=True)
        client.close()
    time.sleep(PIECES * 0.05 + 0.3)  # time for the rest of the model's steps, if it ran on
    assert steps(counter) - before <= 3
