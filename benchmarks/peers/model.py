"""The models every system serves, and the inputs the benchmark sends.

This file is copied next to each peer's service code and imported from there, so it needs
only the standard library at import; each model imports its own packages when built (numpy
and scikit-learn in every peer's environment, torch where a system serves the CNN).
"""

from __future__ import annotations

import random
from typing import Any

NOOP_INPUT = [round(0.5 * i, 1) for i in range(10)]
"""The no-op workload's input: 10 floats, answered unchanged."""

SKLEARN_FEATURES = 20
SKLEARN_ROW = [round(((i * 37) % 19) / 9.0 - 1.0, 4) for i in range(SKLEARN_FEATURES)]
"""The scikit-learn workload's input: one row of 20 features."""

CNN_SHAPE = (3, 64, 64)
CNN_SIZE = CNN_SHAPE[0] * CNN_SHAPE[1] * CNN_SHAPE[2]
CNN_CLASSES = 10
CNN_INPUT = [round(((i * 7919) % 201) / 100.0 - 1.0, 2) for i in range(CNN_SIZE)]
"""The CNN workload's input: one 3x64x64 image, flattened (12,288 floats in [-1, 1])."""
CNN_SEED = 0

TEXT_TOPICS = {
    "sport": "match goal team score league player coach season win stadium referee cup",
    "science": "atom cell energy theory experiment quantum molecule gene physics lab data",
    "finance": "market stock bank price rate loan profit trade budget invest fund tax",
}
TEXT_FILLER = ("the", "a", "of", "and", "to", "in", "on", "with", "for", "by", "today", "new",
               "report", "says", "more")  # fmt: skip
TEXT_INPUT = "the team won the match with a late goal and the coach says the season is new"
"""The text workload's input: one English sentence (a string)."""


def workload_input(workload: str) -> Any:
    """The one input every request of `workload` carries (`noop`, `sklearn`, `sklearn-batch`,
    `cnn` or `text`)."""
    inputs = {"noop": NOOP_INPUT, "cnn": CNN_INPUT, "text": TEXT_INPUT}
    return inputs.get(workload, SKLEARN_ROW)


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


def build_cnn(device: str = "cpu") -> Any:
    """A small image classifier (four 3x3 conv layers, 32-128 channels, then a linear layer
    to 10 classes) with fixed random weights (seeded), in eval mode on `device`."""
    import torch
    from torch import nn

    torch.manual_seed(CNN_SEED)

    def block(channels_in: int, channels_out: int) -> list[nn.Module]:
        return [nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

    layers = [*block(3, 32), *block(32, 64), *block(64, 128), *block(128, 128)]
    network = nn.Sequential(*layers, nn.Flatten(), nn.Linear(128 * 4 * 4, CNN_CLASSES))
    return network.eval().to(device)


def predict_images(network: Any, images: Any) -> list[int]:
    """Class labels of a batch of images: a list of flat images, or an array of shape
    (n, 12288) or (n, 3, 64, 64); moved to the network's device once per batch."""
    import numpy as np
    import torch

    device = next(network.parameters()).device
    array = np.asarray(images, dtype=np.float32).reshape(-1, *CNN_SHAPE)
    with torch.inference_mode():
        logits = network(torch.from_numpy(array).to(device))
    return [int(label) for label in logits.argmax(dim=1).tolist()]


def text_corpus(size: int = 600, seed: int = 0) -> tuple[list[str], list[int]]:
    """A fixed labelled corpus: sentences of one topic's words mixed with filler words."""
    generator = random.Random(seed)
    topics = list(TEXT_TOPICS.values())
    sentences, labels = [], []
    for index in range(size):
        label = index % len(topics)
        words = generator.choices(topics[label].split(), k=6)
        words += generator.choices(TEXT_FILLER, k=6)
        generator.shuffle(words)
        sentences.append(" ".join(words))
        labels.append(label)
    return sentences, labels


def train_text_model() -> Any:
    """TF-IDF (words and bigrams) and a LogisticRegression, trained now on `text_corpus()`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    sentences, labels = text_corpus()
    pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=500))
    return pipeline.fit(sentences, labels)


def predict_texts(model: Any, texts: Any) -> list[int]:
    """Topic labels of a batch of strings."""
    return [int(label) for label in model.predict(list(texts))]
