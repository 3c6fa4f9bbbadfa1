"""Loading model artifact directories into batch predict functions."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from clipper.artifacts.loader import ModelLoadError, load_model

HERE_PYTHON = platform.python_version()
HERE_CLOUDPICKLE = cloudpickle.__version__


def write_metadata(path: Path, **metadata: Any) -> Path:
    (path / "clipper_model.json").write_text(json.dumps(metadata))
    return path


def closure_artifact(path: Path, func: Any, **overrides: Any) -> Path:
    """A python_closure directory as a deployer writes it, with `overrides` in the metadata."""
    (path / "func.pkl").write_bytes(cloudpickle.dumps(func))
    metadata = {
        "kind": "python_closure",
        "python_version": HERE_PYTHON,
        "cloudpickle_version": HERE_CLOUDPICKLE,
        **overrides,
    }
    return write_metadata(path, **metadata)


def directory_artifact(
    path: Path, source: str, filename: str = "predict.py", **metadata: Any
) -> Path:
    (path / filename).write_text(source)
    return write_metadata(path, kind="python_directory", **metadata)


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The python_directory loader puts the artifact on sys.path; undo it after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def scaler(factor: int) -> Callable[[list[int]], list[int]]:
    return lambda inputs: [value * factor for value in inputs]


def test_a_closure_artifact_loads_and_is_callable(tmp_path: Path) -> None:
    predict = load_model(closure_artifact(tmp_path, scaler(3)))

    assert predict([1, 2]) == [3, 6]


def test_a_closure_from_another_patch_release_loads(tmp_path: Path) -> None:
    major, minor = sys.version_info[:2]

    predict = load_model(
        closure_artifact(tmp_path, scaler(2), python_version=f"{major}.{minor}.99")
    )

    assert predict([5]) == [10]


def test_a_closure_without_recorded_versions_loads(tmp_path: Path) -> None:
    artifact = closure_artifact(tmp_path, scaler(2))
    write_metadata(artifact, kind="python_closure")

    assert load_model(artifact)([4]) == [8]


def test_a_python_minor_version_mismatch_names_both_versions(tmp_path: Path) -> None:
    major, minor = sys.version_info[:2]
    wanted = f"{major}.{minor + 1}.0"
    artifact = closure_artifact(tmp_path, scaler(2), python_version=wanted)

    with pytest.raises(ModelLoadError, match=f"Python {wanted} .* Python {HERE_PYTHON}"):
        load_model(artifact)


def test_a_cloudpickle_major_version_mismatch_names_both_versions(tmp_path: Path) -> None:
    wanted = f"{int(HERE_CLOUDPICKLE.split('.')[0]) + 1}.0.0"
    artifact = closure_artifact(tmp_path, scaler(2), cloudpickle_version=wanted)

    with pytest.raises(
        ModelLoadError, match=f"cloudpickle {wanted} .* cloudpickle {HERE_CLOUDPICKLE}"
    ):
        load_model(artifact)


def test_a_pickle_that_is_not_callable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"func\.pkl holds a dict, not a callable"):
        load_model(closure_artifact(tmp_path, {"not": "callable"}))


def test_a_directory_artifact_loads_its_predict_function(tmp_path: Path) -> None:
    source = "def predict(inputs):\n    return [len(item) for item in inputs]\n"

    predict = load_model(directory_artifact(tmp_path, source))

    assert predict(["ab", "cde"]) == [2, 3]


def test_a_directory_artifact_can_import_its_own_modules(tmp_path: Path) -> None:
    (tmp_path / "helper_for_loader_test.py").write_text("OFFSET = 100\n")
    source = (
        "from helper_for_loader_test import OFFSET\n\n"
        "def predict(xs):\n    return [x + OFFSET for x in xs]\n"
    )

    assert load_model(directory_artifact(tmp_path, source))([1]) == [101]


def test_a_directory_artifact_may_name_its_entry_and_function(tmp_path: Path) -> None:
    source = "def run(inputs):\n    return ['ran'] * len(inputs)\n"
    artifact = directory_artifact(tmp_path, source, "model.py", entry="model.py", function="run")

    assert load_model(artifact)([1, 2]) == ["ran", "ran"]


def test_a_directory_artifact_without_the_function_is_refused(tmp_path: Path) -> None:
    artifact = directory_artifact(tmp_path, "predict = 3\n")

    with pytest.raises(ModelLoadError, match="defines no callable 'predict'"):
        load_model(artifact)


def test_missing_metadata_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"holds no clipper_model\.json"):
        load_model(tmp_path)


@pytest.mark.parametrize("metadata", [{"kind": "tensorflow"}, {}], ids=["unknown", "missing"])
def test_an_unknown_kind_is_refused(tmp_path: Path, metadata: dict[str, Any]) -> None:
    write_metadata(tmp_path, **metadata)

    with pytest.raises(ModelLoadError, match="unknown artifact kind"):
        load_model(tmp_path)
