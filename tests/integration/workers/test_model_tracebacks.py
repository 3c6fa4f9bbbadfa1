"""Tracebacks of deployed models name their source file (issue 21, item 7): cloudpickle
writes code pickled by value as `<dynamic-code>`; the worker's log shows the file, the line
number and the line, for a function of a test module and for a class of a model file
deployed with the CLI's loader."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from clipper.artifacts.python import class_artifact
from clipper.cli.commands import load_function
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until

MODEL_FILE = textwrap.dedent("""
    class Broken:
        def predict(self, inputs):
            return [self.helper(x) for x in inputs]

        def helper(self, x):
            raise ValueError("boom from helper")
""").lstrip()


def failing_closure(xs: list[Any]) -> list[float]:
    return [_explode(x) for x in xs]


def _explode(x: Any) -> float:
    raise KeyError("boom from a test module")


def traceback_of(server: ServerHandle, model: str, marker: str) -> str:
    log = server.state_dir / "logs" / f"{model}-1-0.log"
    return wait_until(
        lambda: log.read_text() if marker in log.read_text() else "", 20, "the traceback"
    )


def test_a_function_s_traceback_names_its_module(configured_server: ServerFactory) -> None:
    server = configured_server("tracebacks")
    deploy(server, "closure", failing_closure)

    assert server.predict("closure", {"input": [1.0]}).json()["default"] is True
    log = traceback_of(server, "closure", "boom from a test module")

    assert "<dynamic-code>" not in log
    assert f'File "{__file__}"' in log
    assert 'raise KeyError("boom from a test module")' in log  # the line itself


def test_a_class_from_a_model_file_names_the_file(
    configured_server: ServerFactory, tmp_path: Path
) -> None:
    server = configured_server("class-tracebacks")
    model_file = tmp_path / "model.py"
    model_file.write_text(MODEL_FILE)
    broken = load_function(model_file, "Broken")
    admin = server.admin
    admin.add_app("broken", "doubles", default_output="-1", latency_slo_micros=1_000_000)
    admin.upload_artifact("broken", "1", class_artifact(broken))
    model_file.unlink()  # the worker shows the lines the deploy carried, not the file's
    admin.add_model("broken", "1", "doubles")
    admin.add_model_links("broken", ["broken"])
    admin.wait_model_ready("broken", "1")

    assert server.predict("broken", {"input": [1.0]}).json()["default"] is True
    log = traceback_of(server, "broken", "boom from helper")

    assert f'File "{model_file}", line 6, in helper' in log
    assert 'raise ValueError("boom from helper")' in log
    assert f'File "{model_file}", line 3, in predict' in log
