"""`clipper serve` (issue 21, item 5): one command starts a server, deploys a file's
function as app and model, prints a curl line that works; `--reload` deploys each change
while the version before keeps answering, and a broken file leaves it answering."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.integration.cli.cli_cluster import Cli
from tests.integration.cluster import wait_until

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "serve" / "model.py"
MODEL = "def predict(xs):\n    return [{value} for _ in xs]\n"
BROKEN = "def predict(xs):\n    return [1.0 for _ in xs\n"


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """A cluster on free ports that `clipper serve` starts; stopped (by pid too) after."""
    cluster = Cli.on_free_ports(tmp_path / "state", "serve-tests")
    try:
        yield cluster
    finally:
        cluster.close()


class Output:
    """The lines a process prints (stdout and stderr), read as they come."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self.lines.append(line.rstrip("\n"))

    def close(self) -> None:
        """Once the process has exited: the rest of its output, and the pipe closed."""
        self._thread.join(10)

    def wait_for(self, text: str, timeout_s: float = 60) -> str:
        def found() -> str | None:
            return next((line for line in list(self.lines) if text in line), None)

        line: str = wait_until(found, timeout_s, f"{text!r} in the output:\n{self.text()}")
        return line

    def text(self) -> str:
        return "\n".join(self.lines)


def curl_request(line: str) -> tuple[str, dict[str, str], str]:
    """The URL, headers and body of the printed `curl -X POST -H H -d BODY URL` line."""
    words = shlex.split(line.strip())
    assert words[:3] == ["curl", "-X", "POST"], line
    header, _, value = words[words.index("-H") + 1].partition(": ")
    return words[-1], {header: value}, words[words.index("-d") + 1]


def query(request: tuple[str, dict[str, str], str]) -> Any:
    url, headers, body = request
    response = httpx.post(url, headers=headers, content=body, timeout=30)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["default"] is False, reply  # some version answers every query
    return reply["output"]


def test_serve_deploys_and_prints_a_curl_line_that_works(cli: Cli, tmp_path: Path) -> None:
    model = tmp_path / "my_model.py"
    model.write_text(MODEL.format(value="1.0"))

    first = cli.run("serve", str(model), "--input-type", "doubles").stdout
    cli.server_pid = int(first.split("started (pid ")[1].split(")")[0])
    curl = next(line for line in first.splitlines() if line.strip().startswith("curl "))
    request = curl_request(curl)

    assert request[0].endswith("/my-model/predict")  # the file's stem as a valid name
    assert query(request) == 1.0
    again = cli.run("serve", str(model)).stdout  # the server runs: no second one
    assert "started" not in again
    assert "'my-model', version 2" in again
    assert query(request) == 1.0
    example = cli.run("serve", str(EXAMPLE), "--input-type", "doubles").stdout
    assert (
        query(curl_request(next(line for line in example.splitlines() if "curl " in line))) == 6.0
    )


def test_serve_reload_deploys_each_change_and_survives_a_broken_file(
    cli: Cli, tmp_path: Path
) -> None:
    model = tmp_path / "reloaded.py"
    model.write_text(MODEL.format(value="1.0"))
    first = cli.run("serve", str(model), "--input-type", "doubles").stdout
    cli.server_pid = int(first.split("started (pid ")[1].split(")")[0])
    request = curl_request(next(line for line in first.splitlines() if "curl " in line))

    command = [sys.executable, "-m", "clipper.cli", "serve", str(model), "--reload", *cli.flags]
    watcher = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert watcher.stdout is not None
    output = Output(watcher.stdout)
    try:
        output.wait_for("Watching")
        assert "'reloaded', version 2" in output.text()

        model.write_text(MODEL.format(value="22.0"))
        answers = [query(request)]
        wait_until(lambda: answers.append(query(request)) or answers[-1] == 22.0, 60,
                   f"answers of the edited file (so far {set(answers)})")  # fmt: skip
        assert set(answers) <= {1.0, 22.0}
        output.wait_for("Serving reloaded:3")

        model.write_text(BROKEN)
        error = output.wait_for("error: ")
        assert "SyntaxError" in error
        assert len(error.splitlines()) == 1
        assert query(request) == 22.0  # the version before keeps answering

        watcher.send_signal(signal.SIGINT)  # Ctrl-C: stops watching, not the server
        assert watcher.wait(30) == 0
        output.wait_for("Stopped watching")
        assert query(request) == 22.0
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.wait(10)
        output.close()
