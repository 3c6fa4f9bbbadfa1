"""Input limits: each over-limit input class gets its clear error in the stable shape, and
a memory limit enforced with RLIMIT_AS turns a model's allocation into MemoryError."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy

LIMITS = {
    "max_batch_inputs": 8,
    "max_string_bytes": 64,
    "max_tensor_elements": 16,
    "max_json_depth": 6,
}


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


def lengths(xs: list[Any]) -> list[int]:
    return [len(x) for x in xs]


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    handle = module_server("limits", **LIMITS)
    deploy(handle, "m", feature_sum)
    deploy(handle, "s", lengths, input_type="strings")
    deploy(handle, "b", lengths, input_type="bytes")
    return handle


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def tensor(shape: list[int], data: list[Any], datatype: str = "FP64") -> dict[str, Any]:
    return {"inputs": [{"name": "input", "datatype": datatype, "shape": shape, "data": data}]}


B64 = base64.b64encode(b"x" * 100).decode()
# (path, body, status, what the cause names)
OVER_LIMITS: list[tuple[str, Any, int, str]] = [
    ("/m/predict", {"input_batch": [[1.0]] * 9}, 413, "max_batch_inputs"),
    ("/s/predict", {"input": "x" * 65}, 413, "max_string_bytes"),
    ("/s/predict", {"input_batch": ["ok", "é" * 33]}, 413, "max_string_bytes"),
    ("/b/predict", {"input": B64}, 413, "max_string_bytes"),
    ("/m/predict", {"input": [1.0] * 17}, 413, "max_tensor_elements"),
    ("/m/predict", {"input": [1.0], "extra": nested(10)}, 400, "max_json_depth"),
    ("/m/predict", b'{"input": [1.0], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400,
     "max_json_depth"),
    ("/v2/models/m/infer", tensor([9, 1], [1.0] * 9), 413, "max_batch_inputs"),
    ("/v2/models/m/infer", tensor([1, 17], [1.0] * 17), 413, "max_tensor_elements"),
    ("/v2/models/m/infer", tensor([1, 2**40], [1.0]), 413, "max_tensor_elements"),
    ("/v2/models/m/infer", {**tensor([1, 1], [1.0]), "parameters": {"p": nested(10)}}, 400,
     "max_json_depth"),
    ("/v2/models/s/infer", tensor([1], ["x" * 65], "BYTES"), 413, "max_string_bytes"),
    ("/v2/models/s/infer", tensor([1], nested(10), "BYTES"), 400, "max_json_depth"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "status", "setting"), OVER_LIMITS)
def test_an_input_over_a_limit_gets_a_clear_error(
    server: ServerHandle, path: str, body: Any, status: int, setting: str
) -> None:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    response = httpx.post(f"{server.query_url}{path}", content=raw, timeout=30)

    assert response.status_code == status, response.text
    error = response.json()
    cause = error["cause"] if "cause" in error else error["error"]
    assert setting in cause, error


def test_inputs_within_the_limits_answer(server: ServerHandle) -> None:
    batch = server.predict("m", {"input_batch": [[1.0] * 16] * 8}).json()["batch_predictions"]
    strings = server.predict("s", {"input": "é" * 32}).json()
    v2 = httpx.post(
        f"{server.query_url}/v2/models/m/infer", json=tensor([8, 2], [1.0] * 16), timeout=30
    )

    assert [p["output"] for p in batch] == [16.0] * 8
    assert strings["output"] == 32
    assert v2.status_code == 200, v2.text


RLIMIT_PROBE = """
import sys
from clipper.core.resources import ReplicaLimits
from clipper.worker.rlimits import apply_limits
print(apply_limits(ReplicaLimits(memory_limit_bytes=1 << 30), "rlimit"))
try:
    hoard = b"x" * (2 << 30)
except MemoryError:
    sys.exit(12)
"""


def test_an_rlimit_memory_limit_turns_a_large_allocation_into_memory_error() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", RLIMIT_PROBE], capture_output=True, text=True, timeout=60
    )

    assert probe.returncode == 12, probe.stderr
    assert "RLIMIT_AS" in probe.stdout
