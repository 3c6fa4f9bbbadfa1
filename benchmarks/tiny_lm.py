"""A tiny byte-level language model with the step interface (clipper.artifacts.stepping).

A GRU cell over bytes with fixed random weights (seed 0: no download, no training), greedy
decoding restricted to printable ASCII, so the same prompt gives the same text everywhere.
An input is JSON text `{"prompt": str, "max_tokens": int}`; each step yields one character.
The benchmark (benchmarks/streaming.py) serves it in Clipper and in LitServe; only torch is
needed to import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["PaddedRequestLM", "RequestLevelLM", "TinyLM", "request_text"]

EMBEDDING = 64
HIDDEN = 512
PRINTABLE = (32, 127)  # the bytes it may generate: [32, 127)


def request_text(prompt: str, max_tokens: int) -> str:
    """The model's input for a prompt and a number of pieces to generate."""
    return json.dumps({"prompt": prompt, "max_tokens": max_tokens})


@dataclass(slots=True)
class Sequence:
    """One sequence being generated: its hidden state, its next input byte, pieces left."""

    hidden: torch.Tensor  # (HIDDEN,)
    byte: int
    left: int


class TinyLM:
    """The step model: `start` runs the prompt through the cell (the prefill), `step` runs
    one cell step for every sequence at once and picks each one's likeliest next byte."""

    max_sequences = 256

    def __init__(self) -> None:
        torch.set_num_threads(1)  # one core per server: 2-core machines, fair comparisons
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.embedding = torch.randn(256, EMBEDDING, generator=generator)
            self.cell = torch.nn.GRUCell(EMBEDDING, HIDDEN)
            for parameter in self.cell.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
            self.out = torch.randn(HIDDEN, 256, generator=generator) * 0.2
            self.prefill = torch.nn.GRU(EMBEDDING, HIDDEN)  # the same weights, whole prompts
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(self.prefill, f"{name}_l0").copy_(getattr(self.cell, name))
        self.mask = torch.full((256,), float("-inf"))
        self.mask[PRINTABLE[0] : PRINTABLE[1]] = 0.0

    def start(self, value: Any) -> Sequence:
        """Prefill: the prompt's bytes but the last through the GRU, in one call."""
        request = json.loads(value)
        prompt = request["prompt"].encode() or b" "
        hidden = torch.zeros(HIDDEN)
        if len(prompt) > 1:
            with torch.no_grad():
                _, last = self.prefill(self.embedding[torch.tensor(list(prompt[:-1]))])
            hidden = last[0]
        return Sequence(hidden, prompt[-1], max(1, int(request["max_tokens"])))

    def step(self, states: list[Sequence]) -> list[tuple[str, bool]]:
        """One byte more for every sequence, in one batched cell step."""
        return self._advance(states, 0)

    def _advance(self, states: list[Sequence], padding: int) -> list[tuple[str, bool]]:
        """Step `states`, with `padding` more rows computed and thrown away."""
        rows = [*states, *[states[-1]] * padding]
        with torch.no_grad():
            inputs = self.embedding[torch.tensor([state.byte for state in rows])]
            hidden = self.cell(inputs, torch.stack([state.hidden for state in rows]))
            chosen = (hidden @ self.out + self.mask).argmax(dim=1).tolist()
        results = []
        for index, state in enumerate(states):
            byte = chosen[index]
            state.hidden, state.byte, state.left = hidden[index], byte, state.left - 1
            results.append((chr(byte), state.left == 0))
        return results

    def generate(self, value: Any) -> str:
        """One input's whole text, stepped alone (a reference for checks)."""
        state = self.start(value)
        text = []
        while True:
            [(piece, done)] = self.step([state])
            text.append(piece)
            if done:
                return "".join(text)


class RequestLevelLM(TinyLM):
    """The same model run request-level: a batch's sequences run to the end of its longest
    before the next batch starts (for comparison with continuous batching); the worker
    drops a finished sequence from the steps that follow (early exit)."""

    continuous = False


class PaddedRequestLM(RequestLevelLM):
    """Request-level as a batched generate call runs it: the rows of a batch's finished
    sequences are still computed, until its longest sequence is done."""

    def __init__(self) -> None:
        super().__init__()
        self._batch: set[int] = set()  # the ids of the running batch's sequences
        self._width = 0

    def step(self, states: list[Sequence]) -> list[tuple[str, bool]]:
        ids = {id(state) for state in states}
        if not ids <= self._batch:  # a new batch (request-level: none joins a running one)
            self._batch, self._width = ids, len(states)
        return self._advance(states, self._width - len(states))
