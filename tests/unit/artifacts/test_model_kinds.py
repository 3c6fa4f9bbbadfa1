"""Every artifact kind, built by its deployer and loaded by the worker's loader in-process:
the loaded model answers as the original does."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris

from clipper.artifacts.format import pack_directory
from clipper.artifacts.loader import ModelLoadError, load_model
from clipper.artifacts.python import class_artifact, closure_artifact, directory_artifact
from clipper.core.exceptions import InvalidRequest

X, Y = load_iris(return_X_y=True)
ROWS = [np.asarray(row, dtype=np.float64) for row in X[:7]]


def unpack(archive: bytes, path: Path) -> Path:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(path, filter="data")
    return path


def metadata(path: Path) -> dict[str, Any]:
    return dict(json.loads((path / "clipper_model.json").read_text()))


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))


class Scaler:
    """A model class: `load` reads a factor from its data directory."""

    def __init__(self) -> None:
        self.factor = 0.0

    def load(self, path: str) -> None:
        self.factor = float((Path(path) / "factor.txt").read_text())

    def predict(self, inputs: list[Any]) -> list[float]:
        return [float(x.sum()) * self.factor for x in inputs]


class AsyncEcho:
    async def predict(self, inputs: list[str]) -> list[str]:
        await asyncio.sleep(0)
        return [s.upper() for s in inputs]


def test_a_model_class_is_loaded_once_with_its_data(tmp_path: Path) -> None:
    data = tmp_path / "data-src"
    data.mkdir()
    (data / "factor.txt").write_text("2.5")

    artifact = unpack(class_artifact(Scaler, model_data_path=str(data)), tmp_path / "a")
    predict = load_model(artifact)

    assert predict([np.array([1.0, 3.0])]) == [10.0]
    assert metadata(artifact)["kind"] == "python_class"


def test_an_async_predict_is_awaited(tmp_path: Path) -> None:
    predict = load_model(unpack(class_artifact(AsyncEcho()), tmp_path))

    assert predict(["a", "b"]) == ["A", "B"]
    assert predict(["c"]) == ["C"]


def test_an_async_closure_is_awaited(tmp_path: Path) -> None:
    async def double(inputs: list[Any]) -> list[Any]:
        return [x * 2 for x in inputs]

    assert load_model(unpack(closure_artifact(double), tmp_path))([1, 2]) == [2, 4]


def test_a_class_without_predict_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="no predict"):
        class_artifact(object)


def test_a_directory_with_a_model_class_is_loaded_with_its_directory(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "weights.txt").write_text("3")
    (source / "predict.py").write_text(
        "from pathlib import Path\n\n"
        "class Model:\n"
        "    def load(self, path):\n"
        "        self.k = int((Path(path) / 'weights.txt').read_text())\n\n"
        "    def predict(self, inputs):\n"
        "        return [self.k * len(s) for s in inputs]\n"
    )
    built = directory_artifact(source)
    artifact = unpack(pack_directory(source, built), tmp_path / "a")

    assert built["class"] == "Model"
    assert load_model(artifact)(["ab", "c"]) == [6, 3]


def test_a_directory_records_its_requirements_txt(tmp_path: Path) -> None:
    (tmp_path / "predict.py").write_text("def predict(xs):\n    return xs\n")
    (tmp_path / "requirements.txt").write_text("six==1.17.0\n")

    environment = directory_artifact(tmp_path, pkgs_to_install=["attrs"])["environment"]

    assert environment["requirements"] == ["attrs", "six==1.17.0"]
    assert environment["source"] == "file"


def test_a_directory_captures_what_its_files_import(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("import numpy\n")
    (tmp_path / "predict.py").write_text(
        "import helper\nimport os\n\ndef predict(xs):\n    return xs\n"
    )

    environment = directory_artifact(tmp_path)["environment"]

    assert environment["requirements"] == [f"numpy=={np.__version__}"]


def test_an_artifact_file_that_is_missing_is_named(tmp_path: Path) -> None:
    from clipper.artifacts.lightgbm import lightgbm_artifact

    lightgbm = pytest.importorskip("lightgbm")
    booster = lightgbm.train({"verbose": -1}, lightgbm.Dataset(X, Y), num_boost_round=2)
    artifact = unpack(lightgbm_artifact(booster), tmp_path)
    (artifact / "model.txt").unlink()

    with pytest.raises(ModelLoadError, match=r"the artifact has no model\.txt"):
        load_model(artifact)


# -- frameworks -------------------------------------------------------------------------


def sklearn_pipeline() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y)


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_sklearn(tmp_path: Path, method: str) -> None:
    from clipper.artifacts.sklearn import sklearn_artifact

    model = sklearn_pipeline()
    artifact = unpack(sklearn_artifact(model, method=method), tmp_path)

    outputs = load_model(artifact)(ROWS)

    np.testing.assert_allclose(np.array(outputs), getattr(model, method)(np.stack(ROWS)))
    assert metadata(artifact)["serializer"] == "joblib"
    requirements = metadata(artifact)["environment"]["requirements"]
    assert any(r.startswith("scikit-learn==") for r in requirements)


def scale_features(batch: Any) -> Any:
    return batch * 2.0


def test_sklearn_with_local_code_is_cloudpickled(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from clipper.artifacts.sklearn import sklearn_artifact

    model = make_pipeline(FunctionTransformer(scale_features), LinearRegression()).fit(X, Y)
    artifact = unpack(sklearn_artifact(model), tmp_path)

    np.testing.assert_allclose(load_model(artifact)(ROWS), model.predict(np.stack(ROWS)))
    assert metadata(artifact)["serializer"] == "cloudpickle"


def torch_module() -> Any:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.BatchNorm1d(3)
    )
    model(torch.randn(16, 4))  # moves the batch norm's running statistics
    return model.eval()


def torch_func(model: Any, inputs: list[Any]) -> list[list[float]]:
    import torch

    batch = torch.tensor(np.stack(inputs), dtype=torch.float32)
    return model(batch).numpy().tolist()


def torch_expected(model: Any) -> Any:
    import torch

    with torch.no_grad():
        return model(torch.tensor(np.stack(ROWS), dtype=torch.float32)).numpy()


@pytest.mark.parametrize("with_func", [True, False])
def test_pytorch(tmp_path: Path, with_func: bool) -> None:
    from clipper.artifacts.pytorch import pytorch_artifact

    model = torch_module()
    artifact = unpack(pytorch_artifact(model, torch_func if with_func else None), tmp_path)

    outputs = load_model(artifact)(ROWS)

    np.testing.assert_allclose(
        np.array(outputs, dtype=np.float32), torch_expected(model), rtol=1e-5
    )


def torch_pieces(model: Any, inputs: list[Any]) -> Any:
    import torch

    for _ in range(3):
        yield torch.is_inference_mode_enabled()


def test_a_pytorch_generator_func_streams_each_step_in_inference_mode(tmp_path: Path) -> None:
    from clipper.artifacts.pytorch import pytorch_artifact
    from clipper.worker.streaming import is_streaming

    predict = load_model(unpack(pytorch_artifact(torch_module(), torch_pieces), tmp_path))

    assert is_streaming(predict)
    assert list(predict([ROWS[0]])) == [True, True, True]


def test_onnx_exported_from_pytorch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from clipper.artifacts.onnx import export_pytorch, onnx_artifact

    model = torch_module()
    artifact = unpack(onnx_artifact(export_pytorch(model, ROWS[:2])), tmp_path)

    outputs = load_model(artifact)(ROWS)

    np.testing.assert_allclose(np.array(outputs), torch_expected(model), rtol=1e-4, atol=1e-5)


def test_xgboost_booster(tmp_path: Path) -> None:
    xgboost = pytest.importorskip("xgboost")
    from clipper.artifacts.xgboost import xgboost_artifact

    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 2}
    booster = xgboost.train(params, xgboost.DMatrix(X, label=Y), num_boost_round=3)
    artifact = unpack(xgboost_artifact(booster), tmp_path)

    outputs = load_model(artifact)(ROWS)

    expected = booster.predict(xgboost.DMatrix(np.stack(ROWS)))
    np.testing.assert_allclose(np.array(outputs), expected, rtol=1e-6)


def test_xgboost_classifier_wrapper(tmp_path: Path) -> None:
    xgboost = pytest.importorskip("xgboost")
    from clipper.artifacts.xgboost import xgboost_artifact

    model = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(X, Y)
    artifact = unpack(xgboost_artifact(model), tmp_path)

    assert load_model(artifact)(ROWS) == list(model.predict(np.stack(ROWS)))


def test_lightgbm(tmp_path: Path) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    from clipper.artifacts.lightgbm import lightgbm_artifact

    params = {"objective": "multiclass", "num_class": 3, "verbose": -1}
    booster = lightgbm.train(params, lightgbm.Dataset(X, Y), num_boost_round=3)
    artifact = unpack(lightgbm_artifact(booster), tmp_path)

    outputs = load_model(artifact)(ROWS)

    np.testing.assert_allclose(np.array(outputs), booster.predict(np.stack(ROWS)))


def test_a_class_runs_locally_as_a_worker_would(tmp_path: Path) -> None:
    from clipper.core.types import InputType
    from clipper.worker.batch import WrongNumberOfOutputs
    from clipper.worker.local import run_query_locally

    (tmp_path / "factor.txt").write_text("2")
    query = {"input_batch": [[1, 2], [3, 4]]}

    assert run_query_locally(query, Scaler, InputType.INTEGERS, tmp_path) == [6.0, 14.0]
    assert run_query_locally({"input": "ab"}, AsyncEcho(), InputType.STRINGS) == ["AB"]
    with pytest.raises(WrongNumberOfOutputs, match="model returned 1 outputs for a batch of 2"):
        run_query_locally(query, lambda xs: [0], InputType.INTEGERS)
