"""The tiny character LM: fixed weights per seed, greedy and seeded sampling, max_tokens,
stop strings, its end of text, pieces in the shape clipper.core.generation states, its step
form (sequences batched together give each its own text), embeddings, training."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from clipper.artifacts.stepping import StepFunction  # noqa: E402
from clipper.core.generation import GenerationRequest, read_generated  # noqa: E402
from clipper.models.char_lm import (  # noqa: E402
    CharLMSteps,
    embed,
    generate,
    start_sequence,
    step_sequences,
    tiny_char_lm,
    train,
)


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


def test_the_end_of_text_token_ends_a_sequence_with_stop() -> None:
    model = tiny_char_lm(0, mean_tokens=4)
    lengths = []
    for seed in range(20):
        pieces = list(generate(model, GenerationRequest(prompt="a", max_tokens=128, seed=seed)))
        lengths.append(len(pieces))
        if len(pieces) < 128:
            assert pieces[-1]["finish_reason"] == "stop"
            assert read_generated(pieces).completion_tokens == len(pieces) - 1
    assert min(lengths) >= 1
    assert max(lengths) < 60


def requests() -> list[GenerationRequest]:
    """Different lengths, temperatures, seeds and stops."""
    return [
        GenerationRequest(prompt="Hello", max_tokens=5, temperature=0),
        GenerationRequest(prompt="a", max_tokens=40, temperature=1.0, seed=3),
        GenerationRequest(prompt="xyz", max_tokens=25, temperature=0.7, seed=9, stop=("e",)),
        GenerationRequest(messages=({"role": "user", "content": "Hi"},), max_tokens=17),
    ]


def test_the_step_form_batches_sequences_and_gives_each_its_own_text() -> None:
    model = tiny_char_lm(2, mean_tokens=30)
    alone = [list(generate(model, request)) for request in requests()]
    steps = CharLMSteps(model, max_sequences=8)
    function = StepFunction(steps)
    assert function.continuous
    assert function.max_sequences == 8
    states = [steps.start(request.to_json()) for request in requests()]
    together: list[list[Any]] = [[] for _ in states]
    live = list(range(len(states)))
    sizes = []
    while live:
        sizes.append(len(live))
        results = steps.step([states[index] for index in live])
        for index, (piece, _) in zip(live, results, strict=True):
            together[index].append(piece)
        live = [index for index, (_, done) in zip(live, results, strict=True) if not done]
    assert together == alone
    assert sizes[0] == 4
    assert sizes == sorted(sizes, reverse=True)
    joined = function([request.to_json() for request in requests()])  # request-level, joined
    assert [read_generated(output) for output in joined] == [
        read_generated(pieces) for pieces in alone
    ]


def test_padding_rows_change_no_text() -> None:
    model = tiny_char_lm(1)
    request = GenerationRequest(prompt="pad", max_tokens=12, temperature=1.0, seed=5)
    sequence = start_sequence(model, request)
    padded = []
    for _ in range(12):
        [(piece, done)] = step_sequences(model, [sequence], rows=6)
        padded.append(piece)
        if done:
            break
    assert padded == list(generate(model, request))
