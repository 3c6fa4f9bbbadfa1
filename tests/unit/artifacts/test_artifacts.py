"""Building model artifacts: closures and model directories."""

from __future__ import annotations

import io
import json
import platform
import subprocess
import sys
import tarfile
from pathlib import Path

import cloudpickle
import pytest

from clipper.artifacts.format import load_artifact_metadata, pack_directory
from clipper.artifacts.python import closure_artifact, directory_artifact
from clipper.core.exceptions import InvalidRequest

OFFSET = 10


def add_offset(inputs: list[int]) -> list[int]:
    return [value + OFFSET for value in inputs]


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_closure_artifact_holds_a_callable_pickle() -> None:
    members = _members(closure_artifact(add_offset))

    func = cloudpickle.loads(members["func.pkl"])

    assert func([1, 2]) == [11, 12]


def test_closure_metadata_records_versions() -> None:
    metadata = json.loads(_members(closure_artifact(add_offset))["clipper_model.json"])
    sources = metadata.pop("sources")  # for tracebacks (tests/integration/workers)

    assert sources["functions"] == {
        f"add_offset:{add_offset.__code__.co_firstlineno}": __file__,
    }
    assert sources["files"] == {__file__: Path(__file__).read_text()}
    assert metadata == {
        "kind": "python_closure",
        "python_version": platform.python_version(),
        "cloudpickle_version": cloudpickle.__version__,
        "environment": {
            "python_version": platform.python_version(),
            "requirements": [],
            "source": "capture",
        },
    }


def test_local_functions_load_where_their_module_cannot_be_imported(tmp_path: Path) -> None:
    (tmp_path / "func.pkl").write_bytes(_members(closure_artifact(add_offset))["func.pkl"])
    script = "import cloudpickle; f = cloudpickle.load(open('func.pkl', 'rb')); print(f([1]))"

    result = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True
    )

    assert result.stdout.strip() == "[11]", result.stderr


def test_load_metadata_from_directory_and_archive(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(closure_artifact(add_offset))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "model", filter="data")

    assert load_artifact_metadata(archive)["kind"] == "python_closure"
    assert load_artifact_metadata(tmp_path / "model")["kind"] == "python_closure"


def test_load_metadata_without_metadata_file_fails(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=r"clipper_model\.json"):
        load_artifact_metadata(tmp_path)


def test_directory_artifact_packs_files_and_metadata(tmp_path: Path) -> None:
    (tmp_path / "predict.py").write_text("def predict(inputs):\n    return inputs\n")
    (tmp_path / "weights.txt").write_text("1 2 3")

    members = _members(pack_directory(tmp_path, directory_artifact(tmp_path)))

    assert set(members) == {"predict.py", "weights.txt", "clipper_model.json"}
    metadata = json.loads(members["clipper_model.json"])
    assert (metadata["kind"], metadata["entry"], metadata["function"]) == (
        "python_directory",
        "predict.py",
        "predict",
    )


def test_directory_without_predict_function_is_refused(tmp_path: Path) -> None:
    (tmp_path / "predict.py").write_text("def other(inputs):\n    return inputs\n")

    with pytest.raises(InvalidRequest, match="does not define predict"):
        directory_artifact(tmp_path)
