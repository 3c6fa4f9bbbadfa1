"""The streaming benchmark's model: clipper.models.char_lm with fixed seeded weights (no
download, no training), wider than the tests' (width 512: a step's cost is mostly the GRU's),
its end-of-text bias set for texts of about 32 tokens on average, sampled at temperature 1
from each request's seed and capped at 128 tokens: the lengths are the model's own, long
tailed. Three forms of it (benchmarks/streaming.py): the step model batched continuously,
and two request-level ones. Only torch (and orjson, for the request's JSON) is needed to
import it: LitServe's venv imports it too.
"""

from __future__ import annotations

from typing import Any

import torch

from clipper.core.generation import GenerationRequest, read_piece
from clipper.models.char_lm import (
    CharLM,
    CharLMSteps,
    LiveSequence,
    generate,
    step_sequences,
    tiny_char_lm,
)

__all__ = ["MAX_TOKENS", "PaddedRequestSteps", "benchmark_model", "reference_text", "request_text"]

SEED, WIDTH, MEAN_TOKENS, MAX_TOKENS = 0, 512, 32.0, 128
MAX_SEQUENCES = 256


def benchmark_model() -> CharLM:
    """The model every system serves (torch on one thread: one core per server)."""
    torch.set_num_threads(1)
    return tiny_char_lm(SEED, WIDTH, MEAN_TOKENS)


def request_text(prompt: str, seed: int) -> str:
    """The model's input: a sampled request of at most MAX_TOKENS tokens."""
    request = GenerationRequest(prompt=prompt, max_tokens=MAX_TOKENS, temperature=1.0, seed=seed)
    return request.to_json().decode()


def reference_text(prompt: str, seed: int) -> str:
    """The request's text, generated here (to check every system against)."""
    request = GenerationRequest.from_input(request_text(prompt, seed))
    return "".join(read_piece(piece).text for piece in generate(benchmark_model(), request))


def steps(continuous: bool = True) -> CharLMSteps:
    """The step model: continuous, or request-level with early exit (`continuous=False`:
    a batch runs to its longest sequence's end, its finished sequences leave the steps)."""
    return CharLMSteps(benchmark_model(), max_sequences=MAX_SEQUENCES, continuous=continuous,
                       threads=1)  # fmt: skip


class PaddedRequestSteps(CharLMSteps):
    """Request-level as a batched generate call runs it: every step computes as many rows
    as the batch started with (finished sequences' rows computed and thrown away), until
    its longest sequence is done. A batch is the sequences started since the last step
    (request-level: none starts while a batch runs)."""

    def __init__(self) -> None:
        super().__init__(benchmark_model(), max_sequences=MAX_SEQUENCES, continuous=False,
                         threads=1)  # fmt: skip
        self._fresh = 0  # sequences started since the last step
        self._rows = 0

    def start(self, value: str | bytes) -> LiveSequence:
        self._fresh += 1
        return super().start(value)

    def step(self, states: list[LiveSequence]) -> list[tuple[Any, bool]]:
        if self._fresh:
            self._rows, self._fresh = len(states), 0
        return step_sequences(self.model, states, rows=self._rows)
