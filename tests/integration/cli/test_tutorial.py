"""docs/tutorial.md, run: every ```bash and ```python block in order, outputs checked.

How the tutorial is read:
- ```bash blocks run with bash (-e, -o pipefail), ```python blocks as Python scripts; each
  one from a fresh working directory shared by all steps, where `examples/` is this
  repository's;
- a ```text block right after one holds lines its output must contain, in order; `...`
  in a line matches anything;
- `<!-- test: background -->` before a block runs it in the background (a server the reader
  starts in a second terminal) until the test ends, once its expected output appeared;
- ```console blocks (installing) are not run: the test runs in the installed checkout;
- the web page that step 6 tells the reader to open is opened in Chromium at the address the
  tutorial gives, right after that step: a digit is drawn, asked for, read, and feedback sent
  (so the server must allow the page's origin exactly as step 1 started it).

The server gets a fresh state directory and free ports: `CLIPPER_*` variables for the CLI,
and the tutorial's default addresses (1337, 1338, 8000, `LocalContainerManager()`) replaced
by the free ones in the text of each block.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import browser_for_test, draw_a_one_and_ask, new_page
from tests.integration.cluster import free_port, kill_leftovers, pid_alive

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[3]
TUTORIAL = REPO / "docs" / "tutorial.md"
STEP_TIMEOUT_S = 120.0
BACKGROUND_TIMEOUT_S = 15.0
_FENCE = re.compile(r"(<!-- test: (\w+) -->\n)?```(\w+)\n(.*?)```", re.DOTALL)


@dataclass
class Step:
    """One block of the tutorial, with the output expected from it."""

    language: str
    code: str
    expected: list[str]
    background: bool = False


def tutorial_steps(text: str) -> list[Step]:
    """The runnable blocks of a tutorial, each with the `text` block following it."""
    steps: list[Step] = []
    for match in _FENCE.finditer(text):
        directive, language, body = match.group(2), match.group(3), match.group(4)
        if language in ("bash", "python"):
            steps.append(Step(language, body, [], background=directive == "background"))
        elif language == "text" and steps and not steps[-1].expected:
            steps[-1].expected = [line for line in body.splitlines() if line.strip()]
    return steps


def contains_in_order(output: str, expected: list[str]) -> bool:
    """Each expected line (`...`: anything) matches a line of `output`, in order."""
    lines = iter(output.splitlines())
    for pattern in expected:
        regex = re.compile(".*".join(re.escape(part) for part in pattern.split("...")))
        if not any(regex.search(line) for line in lines):
            return False
    return True


def test_tutorial_steps_are_found() -> None:
    steps = tutorial_steps(TUTORIAL.read_text())
    assert len(steps) >= 12
    assert sum(step.background for step in steps) == 1
    assert all(step.expected for step in steps), [s.code for s in steps if not s.expected]


@dataclass
class Tutorial:
    """Runs steps in one working directory against one cluster of free ports."""

    workdir: Path
    env: dict[str, str]
    ports: dict[str, int]
    background: list[subprocess.Popen[str]]

    def localise(self, code: str) -> str:
        code = code.replace("LocalContainerManager()", (
            f"LocalContainerManager(clipper_query_port={self.ports['query']}, "
            f"clipper_management_port={self.ports['admin']}, "
            f"clipper_rpc_port={self.ports['rpc']})"
        ))  # fmt: skip
        for default, name in ((1337, "query"), (1338, "admin"), (8000, "webapp")):
            code = re.sub(rf"(?<![0-9]){default}(?![0-9])", str(self.ports[name]), code)
        return code

    def command(self, step: Step, index: int) -> list[str]:
        code = self.localise(step.code)
        if step.language == "bash":
            return ["bash", "-e", "-o", "pipefail", "-c", code]
        script = self.workdir / f"step_{index}.py"
        script.write_text(code)
        return [sys.executable, str(script)]

    def run(self, step: Step, index: int) -> None:
        if step.background:
            self.start_background(step, index)
            return
        result = subprocess.run(
            self.command(step, index), cwd=self.workdir, env=self.env, capture_output=True,
            text=True, timeout=STEP_TIMEOUT_S, check=False,
        )  # fmt: skip
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"step {index} failed:\n{step.code}\n{output}"
        assert contains_in_order(output, [self.localise(line) for line in step.expected]), (
            f"step {index}:\n{step.code}\nexpected {step.expected}, got:\n{output}"
        )

    def start_background(self, step: Step, index: int) -> None:
        process = subprocess.Popen(
            self.command(step, index), cwd=self.workdir, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.background.append(process)
        assert process.stdout is not None
        deadline = time.monotonic() + BACKGROUND_TIMEOUT_S
        seen: list[str] = []
        expected = [self.localise(line) for line in step.expected]
        while not contains_in_order("".join(seen), expected):  # readline is bounded below
            assert time.monotonic() < deadline, f"step {index} printed only {seen}"
            line = process.stdout.readline()
            assert line, f"step {index} exited: {seen}"
            seen.append(line)

    def close(self) -> None:
        for process in self.background:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            kill_leftovers([process.pid])
            if process.stdout is not None:
                process.stdout.close()


@pytest.fixture
def tutorial(tmp_path: Path) -> Iterator[Tutorial]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "examples").symlink_to(REPO / "examples")
    ports = {name: free_port() for name in ("query", "admin", "rpc", "grpc", "webapp")}
    state_dir = tmp_path / "state"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "CLIPPER_STATE_DIR": str(state_dir),
        "CLIPPER_QUERY_PORT": str(ports["query"]),
        "CLIPPER_ADMIN_PORT": str(ports["admin"]),
        "CLIPPER_RPC_PORT": str(ports["rpc"]),
        "CLIPPER_GRPC_PORT": str(ports["grpc"]),
    }
    env.pop("CLIPPER_ADMIN_TOKEN", None)
    session = Tutorial(workdir, env, ports, [])
    try:
        yield session
    finally:
        session.close()
        _stop_server(state_dir, env)


def _stop_server(state_dir: Path, env: dict[str, str]) -> None:
    """Stop the tutorial's server if a step left it running, and make sure it is gone."""
    pid_file = state_dir / "server.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    if pid is not None and pid_alive(pid):
        subprocess.run(
            [sys.executable, "-m", "clipper.cli", "stop"], env=env, timeout=60, check=False,
            capture_output=True,
        )  # fmt: skip
        kill_leftovers([pid])


_PAGE_ADDRESS = re.compile(r"Open <(http://127\.0\.0\.1:8000/\?[^>]+)>")


def test_the_tutorial_runs_as_written(tutorial: Tutorial, request: pytest.FixtureRequest) -> None:
    text = TUTORIAL.read_text()
    page_address = _PAGE_ADDRESS.search(text)
    assert page_address, "the tutorial no longer says which page to open"
    served = used = False
    with browser_for_test(request) as browser:
        for index, step in enumerate(tutorial_steps(text)):
            tutorial.run(step, index)
            served = served or "examples/webapp/serve.py" in step.code
            if served and not used and not step.background:  # the page is up: use it
                use_the_web_page(browser, tutorial.localise(page_address.group(1)))
                used = True
    assert used


def use_the_web_page(browser: Any, address: str) -> None:
    """What step 6 asks of the reader: draw a digit, ask, read the answer, give feedback."""
    page = new_page(browser)
    page.goto(address)
    draw_a_one_and_ask(page)
    assert page.text_content("#error") == "", page.problems
    assert page.text_content("#prediction") in [str(digit) for digit in range(10)]
    assert "digits:" in page.text_content("#details")
    page.click("#labels button:text-is('1')")
    page.wait_for_function("document.querySelector('#feedback-result').textContent !== ''")
    assert "Rewards: digits:" in page.text_content("#feedback-result")
    assert page.problems == []
