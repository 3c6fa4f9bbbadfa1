"""clipper_admin without a server: exports, connection checks, validation, local predict."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import clipper_admin
from clipper.client import ServerUnreachable
from clipper.core.exceptions import ClipperError, InvalidInput, InvalidName, ModelError
from clipper_admin import (
    ClipperConnection,
    ClipperException,
    LocalContainerManager,
    UnconnectedException,
)
from clipper_admin.deployers import python as python_deployer


def _identity(inputs: list[Any]) -> list[Any]:
    return inputs


@pytest.fixture
def conn(tmp_path: Path) -> ClipperConnection:
    # Port 9 (discard) on localhost: nothing answers there.
    manager = LocalContainerManager(clipper_management_port=9, state_dir=tmp_path)
    return ClipperConnection(manager)


def test_exports() -> None:
    assert set(clipper_admin.__all__) >= {
        "ClipperConnection",
        "ClipperException",
        "LocalContainerManager",
        "UnconnectedException",
    }
    assert all(hasattr(clipper_admin, name) for name in clipper_admin.__all__)


def test_exception_tree() -> None:
    assert ClipperException is ClipperError
    assert issubclass(UnconnectedException, ClipperException)
    assert issubclass(ServerUnreachable, ClipperException)


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("register_application", ("app", "doubles", "None", 100000)),
        ("get_all_apps", ()),
        ("get_all_models", ()),
        ("link_model_to_app", ("app", "model")),
        ("deploy_model", ("m", 1, "doubles", "/nowhere")),
        ("get_query_addr", ()),
        ("inspect_instance", ()),
    ],
)
def test_methods_need_a_connection(conn: ClipperConnection, method: str, args: tuple[Any]) -> None:
    with pytest.raises(UnconnectedException):
        getattr(conn, method)(*args)


def test_deployer_needs_a_connection(conn: ClipperConnection) -> None:
    with pytest.raises(UnconnectedException):
        python_deployer.deploy_python_closure(conn, "m", 1, "doubles", _identity)


def test_connect_to_nothing_raises(conn: ClipperConnection) -> None:
    with pytest.raises(ClipperException, match="Could not connect"):
        conn.connect()
    assert not conn.connected


def test_build_model_validates_names_first(conn: ClipperConnection, tmp_path: Path) -> None:
    with pytest.raises(InvalidName):
        conn.build_model("Bad_Name", 1, str(tmp_path))


def test_build_model_writes_an_archive(conn: ClipperConnection, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "predict.py").write_text("def predict(inputs):\n    return inputs\n")

    image = conn.build_model("m", 2, str(model_dir))

    assert Path(image).name == "m-2.tar.gz"
    assert Path(image).is_file()


def test_delete_application_is_deprecated(conn: ClipperConnection) -> None:
    with (
        pytest.warns(DeprecationWarning, match="unregister_application"),
        pytest.raises(UnconnectedException),
    ):
        conn.delete_application("app")


@pytest.mark.parametrize(
    ("input_type", "value", "dtype"),
    [("integers", [1, 2], np.int32), ("floats", [1, 2.5], np.float32), ("d", [0.5], np.float64)],
)
def test_numeric_inputs_become_arrays(
    conn: ClipperConnection, input_type: str, value: list[float], dtype: type
) -> None:
    [array] = conn.test_predict_function({"input": value}, _identity, input_type)

    assert array.dtype == dtype
    assert array.tolist() == value


def test_strings_stay_str(conn: ClipperConnection) -> None:
    query = {"input_batch": ["a", "b"]}

    assert conn.test_predict_function(query, _identity, "strings") == ["a", "b"]


def test_bytes_are_base64_decoded(conn: ClipperConnection) -> None:
    query = {"input": base64.b64encode(b"\x00\xff").decode()}

    assert conn.test_predict_function(query, _identity, "bytes") == [b"\x00\xff"]


@pytest.mark.parametrize(
    ("input_type", "query"),
    [
        ("integers", {"input": [1.5]}),
        ("doubles", {"input": 1.0}),
        ("strings", {"input": 3}),
        ("bytes", {"input": "not base64!"}),
        ("doubles", {"inputs": [1.0]}),
    ],
)
def test_invalid_queries_are_refused(
    conn: ClipperConnection, input_type: str, query: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInput):
        conn.test_predict_function(query, _identity, input_type)


def test_wrong_number_of_outputs_is_a_model_error(conn: ClipperConnection) -> None:
    with pytest.raises(ModelError, match="1 outputs for a batch of 2 inputs"):
        conn.test_predict_function({"input_batch": [[1], [2]]}, lambda xs: [0], "ints")
