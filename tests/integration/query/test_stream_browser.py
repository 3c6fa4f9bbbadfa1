"""A real page in Chromium consumes streams (issue 24): Server-Sent Events read with fetch
from Clipper's predict and Triton's generate_stream, and the WebSocket of `/<app>/stream`:
pieces arrive as the model yields them, and a cancel sent over the socket, or the socket
closed, stops the model within one step (the steps it ran are counted).
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import browser_for_test, new_page
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, free_port, wait_until
from tests.integration.query.test_streaming import PIECES, STEP_S, counting_stream, steps

PAGE_PORT = free_port()
PAGE = f"http://127.0.0.1:{PAGE_PORT}"  # another origin than the server's (its port differs)
SCRIPT = """
window.sse = async (url, body) => {
  const started = performance.now();
  const response = await fetch(url, {method: "POST", body: JSON.stringify(body),
    headers: {"content-type": "application/json", "accept": "text/event-stream"}});
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const events = [];
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return {status: response.status, type: response.headers.get("content-type"), events};
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\\n\\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "", data = "";
      for (const line of block.split("\\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        if (line.startsWith("data: ")) data = line.slice(6);
      }
      events.push({at: performance.now() - started, name, data: JSON.parse(data)});
    }
  }
};
window.socket = (url, queries, stopAfter, how) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  const started = performance.now();
  const messages = [];
  let pieces = 0;
  ws.onopen = () => ws.send(JSON.stringify(queries.shift()));
  ws.onerror = () => reject(new Error("WebSocket error"));
  ws.onmessage = (message) => {
    const data = JSON.parse(message.data);
    data.at = performance.now() - started;
    messages.push(data);
    if (data.type === "piece" && ++pieces === stopAfter) {
      if (how === "close") { ws.close(); resolve(messages); return; }
      ws.send(JSON.stringify({cancel: true}));
    }
    if (data.type === "end" || data.type === "error") {
      if (queries.length) { pieces = 0; ws.send(JSON.stringify(queries.shift())); return; }
      ws.close();
      resolve(messages);
    }
  };
});
"""


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser-streams") / "steps"


@pytest.fixture(scope="module")
def server(module_server: ServerFactory, counter: Path) -> ServerHandle:
    handle = module_server("stream-page", cors_allowed_origins=[PAGE])
    deploy(handle, "counting", counting_stream(str(counter)), slo_us=2_000_000)
    return handle


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"<!doctype html><title>streams</title><script>{SCRIPT}</script>".encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def page_server() -> Iterator[str]:
    """The page's own web server, on PAGE."""
    served = http.server.ThreadingHTTPServer(("127.0.0.1", PAGE_PORT), _PageHandler)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    try:
        yield PAGE
    finally:
        served.shutdown()
        served.server_close()
        thread.join(5)


@pytest.fixture
def page(request: pytest.FixtureRequest, page_server: str) -> Iterator[Any]:
    """The page, with `sse` and `socket`."""
    with browser_for_test(request) as browser:
        opened = new_page(browser)
        opened.goto(f"{page_server}/")
        yield opened
        assert opened.problems == []


def settled(counter: Path) -> int:
    """The step count once no model runs (no step for three step times)."""

    def quiet() -> bool:
        before = steps(counter)
        time.sleep(3 * STEP_S)
        return steps(counter) == before

    wait_until(quiet, 10, "earlier streams done")
    return steps(counter)


def test_a_page_reads_server_sent_events_with_fetch(page: Any, server: ServerHandle) -> None:
    url = f"{server.query_url}/counting/predict"
    reply = page.evaluate("([url, body]) => sse(url, body)", [url, {"input": [1.0]}])
    assert reply["status"] == 200
    assert reply["type"] == "text/event-stream"
    events = reply["events"]
    assert [event["data"] for event in events[:-1]] == [f"p{i} " for i in range(PIECES)]
    assert events[-1]["name"] == "end"
    assert events[-1]["data"]["output"] == "p0 p1 p2 p3 p4 "
    assert events[PIECES - 1]["at"] - events[0]["at"] >= 3 * STEP_S * 1000  # as they came


def test_a_page_reads_generate_stream(page: Any, server: ServerHandle) -> None:
    url = f"{server.query_url}/v2/models/counting/generate_stream"
    reply = page.evaluate("([url, body]) => sse(url, body)", [url, {"input": [1.0]}])
    assert reply["type"].startswith("text/event-stream")
    assert [event["data"]["output"] for event in reply["events"]] == [f"p{i} " for i in range(5)]


def test_a_websocket_streams_pieces_then_the_end(page: Any, server: ServerHandle) -> None:
    url = f"ws://127.0.0.1:{server.query_port}/counting/stream"
    queries = [{"input": [1.0]}, {"input": [2.0], "max_pieces": 2}]
    messages = page.evaluate("([url, q]) => socket(url, q, 0, '')", [url, queries])
    kinds = [message["type"] for message in messages]
    assert kinds == ["piece"] * PIECES + ["end"] + ["piece"] * 2 + ["end"]
    assert [message["piece"] for message in messages[:PIECES]] == [f"p{i} " for i in range(5)]
    first_end = messages[PIECES]
    assert first_end["output"] == "p0 p1 p2 p3 p4 "
    assert first_end["finish_reason"] == "stop"
    assert first_end["models"] == ["counting:1"]
    assert messages[-1]["finish_reason"] == "length"
    assert messages[PIECES - 1]["at"] - messages[0]["at"] >= 3 * STEP_S * 1000


def test_a_websocket_error_keeps_the_socket_open(page: Any, server: ServerHandle) -> None:
    url = f"ws://127.0.0.1:{server.query_port}/counting/stream"
    queries = [{"inputs": 1}, {"input": [1.0], "max_pieces": 1}]
    messages = page.evaluate("([url, q]) => socket(url, q, 0, '')", [url, queries])
    assert messages[0]["type"] == "error"
    assert messages[0]["code"] == "InvalidInput"
    assert [message["type"] for message in messages[1:]] == ["piece", "end"]


@pytest.mark.parametrize("how", ["cancel", "close"])
def test_cancel_or_close_stops_the_model_within_one_step(
    page: Any, server: ServerHandle, counter: Path, how: str
) -> None:
    before = settled(counter)
    url = f"ws://127.0.0.1:{server.query_port}/counting/stream"
    messages = page.evaluate(
        "([url, q, how]) => socket(url, q, 2, how)", [url, [{"input": [1.0]}], how]
    )
    pieces = [message for message in messages if message["type"] == "piece"]
    if how == "cancel":
        end = messages[-1]
        assert end["type"] == "end"
        assert end["finish_reason"] == "cancelled"
        assert end["output"].startswith("p0 p1 ")
        assert len(pieces) <= 3  # at most the piece in flight when the cancel came
    assert settled(counter) - before <= 3  # two pieces, and at most the step then running
