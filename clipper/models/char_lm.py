"""A tiny character-level language model (PyTorch): a GRU over printable ASCII that
generates a token (one character, or its end of text) per step and embeds a text as its
mean hidden state.

`tiny_char_lm(seed)` builds one with fixed random weights (no download, the same on every
machine for a seed); `train` fits one to a text in a few seconds. It deploys three ways:

- as a step model, batched continuously (clipper.artifacts.stepping): `CharLMSteps(model)`
  advances every running sequence by one batched GRU step, each with its own temperature,
  seed, `max_tokens` and stop strings (a `text-generation` or `chat` model):

      client.deploy_artifact("lm", 1, "strings", closure_artifact(CharLMSteps(model)),
                             task="text-generation")

- as a `pytorch` artifact with `stream` as its func (one sequence per call, request-level);
- as a `pytorch` artifact with `embed` as its func (an `embedding` model).

Both generation forms run the same code (`start_sequence`, `step_sequences`), so a request
gives the same text whichever serves it and whatever it is batched with. A sequence ends
when the model emits its end-of-text token (finish reason `stop`), after `max_tokens`
tokens (`length`) or before a stop string (`stop`): the lengths are the model's own, long
tailed as generative models' are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from clipper.core.generation import GenerationRequest, StopScanner

__all__ = [
    "END_OF_TEXT",
    "VOCABULARY",
    "CharLM",
    "CharLMSteps",
    "LiveSequence",
    "embed",
    "generate",
    "start_sequence",
    "step_sequences",
    "stream",
    "tiny_char_lm",
    "train",
]

VOCABULARY = "\n" + "".join(chr(code) for code in range(32, 127))
"""The model's characters: newline and the printable ASCII ones (others read as `?`)."""
END_OF_TEXT = len(VOCABULARY)
"""The token after the characters: the model's end of text (generated, never read)."""
_INDEX = {char: index for index, char in enumerate(VOCABULARY)}
_UNKNOWN = _INDEX["?"]


class CharLM(nn.Module):
    """Embedding -> GRU -> logits over `VOCABULARY` and `END_OF_TEXT`."""

    def __init__(self, width: int = 64, embedding: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(len(VOCABULARY), embedding)
        self.gru = nn.GRU(embedding, width, batch_first=True)
        self.head = nn.Linear(width, len(VOCABULARY) + 1)

    def forward(
        self, tokens: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits per position, hidden states per position, the last hidden state)."""
        states, last = self.gru(self.embedding(tokens), hidden)
        return self.head(states), states, last


def tiny_char_lm(seed: int = 0, width: int = 64, mean_tokens: float | None = None) -> CharLM:
    """A CharLM with random weights drawn from `seed` (the global RNG is left as it was).

    Its random logits are near uniform, so sampled at temperature 1 it ends a text after
    about as many tokens as it has (97) on average; `mean_tokens` sets the end-of-text
    bias for about that many instead (greedy decoding then mostly ends at once)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CharLM(width).eval()
    if mean_tokens is not None:
        if mean_tokens <= 1:
            raise ValueError(f"mean_tokens must be > 1, got {mean_tokens}")
        with torch.no_grad():
            model.head.bias[END_OF_TEXT] = math.log(len(VOCABULARY) / (mean_tokens - 1))
    return model


def encode(text: str) -> list[int]:
    """Token ids of `text` (a character outside the vocabulary reads as `?`)."""
    return [_INDEX.get(char, _UNKNOWN) for char in text]


def train(model: CharLM, text: str, steps: int = 200, budget_s: float = 10.0) -> CharLM:
    """Fit `model` to predict each next character of `text` and its end (Adam, whole-text
    batches), for `steps` steps or `budget_s` seconds, whichever ends first; returns it
    in eval mode."""
    if not text:
        raise ValueError("train needs a text")
    tokens = torch.tensor([[*encode(text), END_OF_TEXT]])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    ends = time.monotonic() + budget_s
    model.train()
    for _ in range(steps):
        logits, _, _ = model(tokens[:, :-1])
        loss = nn.functional.cross_entropy(logits[0], tokens[0, 1:])
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        if time.monotonic() >= ends:
            break
    return model.eval()


# -- generation: one batched step over every live sequence ---------------------------------


@dataclass(slots=True)
class LiveSequence:
    """One sequence being generated. Invariant: `logits` are the next token's, given the
    prompt and the `produced` tokens so far; `hidden` is the GRU's state after them."""

    request: GenerationRequest
    sampler: torch.Generator
    scanner: StopScanner
    hidden: torch.Tensor  # (1, 1, width)
    logits: torch.Tensor  # (len(VOCABULARY) + 1,)
    prompt_tokens: int
    produced: int = 0


def start_sequence(model: CharLM, request: GenerationRequest) -> LiveSequence:
    """The prefill: the whole prompt through the GRU in one call."""
    device = next(model.parameters()).device
    prompt = encode(request.prompt_text()) or [_INDEX["\n"]]
    with torch.inference_mode():
        logits, _, hidden = model(torch.tensor([prompt], device=device))
    sampler = torch.Generator().manual_seed(request.seed)
    return LiveSequence(request, sampler, StopScanner(request.stop), hidden, logits[0, -1],
                        len(prompt))  # fmt: skip


def step_sequences(
    model: CharLM, sequences: Sequence[LiveSequence], rows: int = 0
) -> list[tuple[Any, bool]]:
    """One token for every sequence, then one batched GRU step for those not done (at
    least `rows` rows computed: padding, as a batched generate computes finished rows).
    Per sequence, in order: its piece (see clipper.core.generation) and whether it ended."""
    results = []
    going: list[tuple[LiveSequence, int]] = []
    for sequence in sequences:
        token = _pick(sequence.logits, sequence.request.temperature, sequence.sampler)
        piece, done = _emit(sequence, token)
        results.append((piece, done))
        if not done:
            going.append((sequence, token))
    if going or (rows and sequences):
        _advance(model, going, sequences[-1], rows)
    return results


def _advance(
    model: CharLM, going: list[tuple[LiveSequence, int]], filler: LiveSequence, rows: int
) -> None:
    """The GRU step of the sequences going on, padded with copies of `filler` to `rows`."""
    padding = max(0, rows - len(going))
    tokens = [token for _, token in going] + [0] * padding
    hidden = [sequence.hidden for sequence, _ in going] + [filler.hidden] * padding
    device = hidden[0].device
    with torch.inference_mode():
        tensor = torch.tensor(tokens, device=device).unsqueeze(1)
        logits, _, last = model(tensor, torch.cat(hidden, dim=1))
    for row, (sequence, _) in enumerate(going):
        sequence.hidden, sequence.logits = last[:, row : row + 1], logits[row, -1]


def _emit(sequence: LiveSequence, token: int) -> tuple[Any, bool]:
    """The piece a token makes and whether the sequence ends with it."""
    sequence.produced += 1
    scanner = sequence.scanner
    piece: dict[str, Any]
    if token == END_OF_TEXT:
        piece = {"text": scanner.flush(), "completion_tokens": 0, "finish_reason": "stop"}
        done = True
    else:
        piece, done = {"text": scanner.feed(VOCABULARY[token])}, scanner.stopped
        if done:
            piece["finish_reason"] = "stop"
        elif sequence.produced >= sequence.request.max_tokens:
            piece = {"text": piece["text"] + scanner.flush(), "finish_reason": "length"}
            done = True
    if sequence.produced == 1:
        piece["prompt_tokens"] = sequence.prompt_tokens
    return (piece if len(piece) > 1 else piece["text"]), done


def _pick(logits: torch.Tensor, temperature: float, sampler: torch.Generator) -> int:
    """The next token: the likeliest at temperature 0, else one sampled."""
    if temperature <= 0:
        return int(logits.argmax())
    weights = torch.softmax(logits.float().cpu() / temperature, dim=-1)
    return int(torch.multinomial(weights, 1, generator=sampler))


def generate(model: CharLM, request: GenerationRequest) -> Iterator[Any]:
    """One piece per generated token (see clipper.core.generation): the first a mapping
    with `prompt_tokens`, the last one with `finish_reason`. Greedy at temperature 0, else
    sampled from `request.seed`; cut before the first stop string."""
    sequence = start_sequence(model, request)
    while True:
        [(piece, done)] = step_sequences(model, [sequence])
        yield piece
        if done:
            return


class CharLMSteps:
    """A CharLM as a step model (clipper.artifacts.stepping): an input is a
    `GenerationRequest`'s JSON text; `step` advances all running sequences in one batched
    GRU step. `continuous=False` runs it request-level; `threads` > 0 sets torch's threads
    in the worker (`load`, called there once)."""

    def __init__(
        self,
        model: CharLM,
        *,
        max_sequences: int = 256,
        continuous: bool = True,
        threads: int = 0,
    ) -> None:
        self.model = model.eval()
        self.max_sequences = max_sequences
        self.continuous = continuous
        self.threads = threads

    def load(self, path: str | None) -> None:
        """Set torch's threads (the worker calls it once, before the first sequence)."""
        if self.threads > 0:
            torch.set_num_threads(self.threads)

    def start(self, value: str | bytes) -> LiveSequence:
        return start_sequence(self.model, GenerationRequest.from_input(value))

    def step(self, states: list[LiveSequence]) -> list[tuple[Any, bool]]:
        return step_sequences(self.model, states)


def stream(model: CharLM, inputs: list[Any]) -> Iterator[Any]:
    """The `pytorch` func of a streaming generation model: `inputs[0]`'s pieces."""
    yield from generate(model, GenerationRequest.from_input(inputs[0]))


def embed(model: CharLM, inputs: list[Any]) -> list[dict[str, Any]]:
    """The `pytorch` func of an embedding model: each text's mean hidden state."""
    device = next(model.parameters()).device
    outputs = []
    for text in inputs:
        tokens = encode(str(text)) or [_INDEX["\n"]]
        _, states, _ = model(torch.tensor([tokens], device=device))
        vector = states[0].mean(dim=0).cpu().tolist()
        outputs.append({"embedding": vector, "prompt_tokens": len(tokens)})
    return outputs
