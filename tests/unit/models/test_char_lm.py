"""The tiny character LM: fixed weights per seed, greedy and seeded sampling, max_tokens,
stop strings, pieces in the shape clipper.core.generation states, embeddings, training."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from clipper.core.generation import GenerationRequest, read_generated  # noqa: E402
from clipper.models.char_lm import embed, generate, tiny_char_lm, train  # noqa: E402


def text(pieces: list[Any]) -> str:
    return read_generated(pieces).text


def run(seed: int = 0, **fields: Any) -> list[Any]:
    return list(generate(tiny_char_lm(seed), GenerationRequest(prompt="Hello", **fields)))


def test_the_weights_are_fixed_by_the_seed() -> None:
    assert text(run(0, temperature=0)) == text(run(0, temperature=0))
    assert text(run(0, temperature=0, max_tokens=30)) != text(run(1, temperature=0, max_tokens=30))


def test_one_piece_per_token_the_first_and_last_say_more() -> None:
    pieces = run(max_tokens=5, temperature=0)
    assert len(pieces) == 5
    assert pieces[0]["prompt_tokens"] == 5
    assert pieces[-1]["finish_reason"] == "length"
    assert read_generated(pieces).completion_tokens == 5


def test_sampling_follows_the_seed() -> None:
    first = text(run(max_tokens=30, temperature=1.0, seed=3))
    assert first == text(run(max_tokens=30, temperature=1.0, seed=3))
    assert first != text(run(max_tokens=30, temperature=1.0, seed=4))


def test_a_stop_string_ends_the_generation_before_it() -> None:
    whole = text(run(max_tokens=20, temperature=0))
    stop = whole[6:8]
    pieces = run(max_tokens=20, temperature=0, stop=(stop,))
    assert text(pieces) == whole[: whole.index(stop)]
    assert pieces[-1]["finish_reason"] == "stop"


def test_embeddings_are_one_vector_per_text() -> None:
    vectors = embed(tiny_char_lm(), ["cat", "a longer text"])
    assert [len(v["embedding"]) for v in vectors] == [64, 64]
    assert [v["prompt_tokens"] for v in vectors] == [3, 13]


def test_training_makes_the_text_likelier() -> None:
    model = train(tiny_char_lm(), "abcabcabcabcabcabcabc", steps=60)
    pieces = list(generate(model, GenerationRequest(prompt="abcab", max_tokens=6, temperature=0)))
    assert text(pieces) == "cabcab"
