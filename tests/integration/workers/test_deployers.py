"""Framework models deployed with clipper_admin's deployers and queried over HTTP: each
answers as the model does in this process. Tiny models, trained on a bundled data set."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_iris

from clipper_admin import ClipperConnection
from tests.integration.clipper_admin_cluster import admin_cluster

pytestmark = pytest.mark.integration

X, Y = load_iris(return_X_y=True)
QUERY_ROWS = X[::15]


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClipperConnection]:
    with admin_cluster(tmp_path_factory.mktemp("deployers") / "state", "deployers") as conn:
        yield conn


def register(conn: ClipperConnection, name: str, input_type: str = "doubles") -> None:
    conn.register_application(name, input_type, "-1", 10_000_000)


def link_and_query(conn: ClipperConnection, name: str, rows: Any = QUERY_ROWS) -> list[Any]:
    conn.link_model_to_app(name, name)
    body = {"input_batch": [list(map(float, row)) for row in rows]}
    reply = httpx.post(f"http://{conn.get_query_addr()}/{name}/predict", json=body, timeout=30)
    reply.raise_for_status()
    answers = reply.json()["batch_predictions"]
    assert not [a for a in answers if a["default"]], answers
    return [answer["output"] for answer in answers]


def test_a_scikit_learn_pipeline(conn: ClipperConnection) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from clipper_admin.deployers import sklearn as sklearn_deployer

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y)
    register(conn, "iris-sklearn")
    sklearn_deployer.deploy_sklearn_model(
        conn, "iris-sklearn", 1, "doubles", model, method="predict_proba"
    )

    outputs = link_and_query(conn, "iris-sklearn")

    np.testing.assert_allclose(outputs, model.predict_proba(QUERY_ROWS), rtol=1e-9)


def iris_module() -> Any:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def torch_outputs(model: Any, rows: Any) -> Any:
    import torch

    with torch.no_grad():
        return model(torch.tensor(np.asarray(rows), dtype=torch.float32)).numpy()


def softmax_scores(model: Any, inputs: list[Any]) -> list[list[float]]:
    import torch

    batch = torch.tensor(np.stack(inputs), dtype=torch.float32)
    return model(batch).numpy().tolist()


def test_a_pytorch_module(conn: ClipperConnection) -> None:
    from clipper_admin.deployers import pytorch as pytorch_deployer

    model = iris_module()
    register(conn, "iris-torch")
    pytorch_deployer.deploy_pytorch_model(conn, "iris-torch", 1, "doubles", softmax_scores, model)

    outputs = link_and_query(conn, "iris-torch")

    np.testing.assert_allclose(outputs, torch_outputs(model, QUERY_ROWS), rtol=1e-5)


def test_an_onnx_model_exported_from_pytorch(conn: ClipperConnection) -> None:
    pytest.importorskip("onnxruntime")
    from clipper_admin.deployers import onnx as onnx_deployer

    model = iris_module()
    register(conn, "iris-onnx")
    onnx_deployer.deploy_pytorch_model(conn, "iris-onnx", 1, "doubles", X[:2], None, model)

    outputs = link_and_query(conn, "iris-onnx")

    np.testing.assert_allclose(outputs, torch_outputs(model, QUERY_ROWS), rtol=1e-4, atol=1e-5)


def test_an_xgboost_booster(conn: ClipperConnection) -> None:
    xgboost = pytest.importorskip("xgboost")
    from clipper_admin.deployers import xgboost as xgboost_deployer

    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 2}
    booster = xgboost.train(params, xgboost.DMatrix(X, label=Y), num_boost_round=4)
    register(conn, "iris-xgb")
    xgboost_deployer.deploy_xgboost_model(conn, "iris-xgb", 1, "doubles", booster)

    outputs = link_and_query(conn, "iris-xgb")

    expected = booster.predict(xgboost.DMatrix(QUERY_ROWS))
    np.testing.assert_allclose(outputs, expected, rtol=1e-6)


def test_a_lightgbm_model(conn: ClipperConnection) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    from clipper_admin.deployers import lightgbm as lightgbm_deployer

    params = {"objective": "multiclass", "num_class": 3, "verbose": -1}
    booster = lightgbm.train(params, lightgbm.Dataset(X, Y), num_boost_round=4)
    register(conn, "iris-lgbm")
    lightgbm_deployer.deploy_lightgbm_model(conn, "iris-lgbm", 1, "doubles", booster)

    outputs = link_and_query(conn, "iris-lgbm")

    np.testing.assert_allclose(outputs, booster.predict(QUERY_ROWS), rtol=1e-9)


class Centroids:
    """A model class: `load` reads class centroids saved next to it."""

    def load(self, path: str) -> None:
        self.centroids = np.load(Path(path) / "centroids.npy")

    async def predict(self, inputs: list[Any]) -> list[int]:
        distances = ((np.stack(inputs)[:, None, :] - self.centroids) ** 2).sum(axis=2)
        return [int(i) for i in distances.argmin(axis=1)]


def test_a_model_class_with_data_and_async_predict(conn: ClipperConnection, tmp_path: Path) -> None:
    from clipper_admin.deployers import python as python_deployer

    centroids = np.stack([X[np.asarray(Y) == label].mean(axis=0) for label in range(3)])
    np.save(tmp_path / "centroids.npy", centroids)
    register(conn, "iris-class")
    python_deployer.deploy_model_class(
        conn, "iris-class", 1, "doubles", Centroids, model_data_path=str(tmp_path)
    )

    outputs = link_and_query(conn, "iris-class")

    model = Centroids()
    model.load(str(tmp_path))
    assert outputs == asyncio.run(model.predict(list(QUERY_ROWS)))
    assert outputs == conn.test_predict_function(
        {"input_batch": QUERY_ROWS.tolist()}, Centroids, "doubles", str(tmp_path)
    )
