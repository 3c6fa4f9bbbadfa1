"""The models every system serves, and the inputs the benchmark sends.

This file is copied next to each peer's service code and imported from there, so it needs
only numpy and scikit-learn (present in every peer's environment) and the standard library.
"""

from __future__ import annotations

from typing import Any

NOOP_INPUT = [round(0.5 * i, 1) for i in range(10)]
"""The no-op workload's input: 10 floats, answered unchanged."""

SKLEARN_FEATURES = 20
SKLEARN_ROW = [round(((i * 37) % 19) / 9.0 - 1.0, 4) for i in range(SKLEARN_FEATURES)]
"""The scikit-learn workload's input: one row of 20 features."""


def train_sklearn_model() -> Any:
    """A LogisticRegression on 20 features, trained now on a fixed synthetic data set."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    features, labels = make_classification(
        n_samples=2000, n_features=SKLEARN_FEATURES, random_state=0
    )
    return LogisticRegression(max_iter=500).fit(features, labels)


def predict_rows(model: Any, rows: Any) -> list[int]:
    """Class labels of a batch of rows (a list of rows or a 2-D array)."""
    import numpy as np

    return [int(label) for label in model.predict(np.asarray(rows, dtype=np.float64))]
