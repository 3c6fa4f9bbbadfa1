"""A tiny character-level language model (PyTorch): a GRU over printable ASCII that
generates a token (one character) per step and embeds a text as its mean hidden state.

`tiny_char_lm(seed)` builds one with fixed random weights (no download, the same on every
machine for a seed); `train` fits one to a text in a few seconds. Deploy it as a `pytorch`
artifact with `stream` as its func (a streaming `text-generation` or `chat` model, see
clipper.core.generation) or `embed` (an `embedding` model):

    client.deploy_artifact("lm", 1, "strings", pytorch_artifact(tiny_char_lm(), stream),
                           task="text-generation")
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from clipper.core.generation import GenerationRequest, StopScanner

__all__ = ["VOCABULARY", "CharLM", "embed", "generate", "stream", "tiny_char_lm", "train"]

VOCABULARY = "\n" + "".join(chr(code) for code in range(32, 127))
"""The model's tokens: newline and the printable ASCII characters (others read as `?`)."""
_INDEX = {char: index for index, char in enumerate(VOCABULARY)}
_UNKNOWN = _INDEX["?"]


class CharLM(nn.Module):
    """Embedding -> GRU -> logits over `VOCABULARY`."""

    def __init__(self, width: int = 64, embedding: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(len(VOCABULARY), embedding)
        self.gru = nn.GRU(embedding, width, batch_first=True)
        self.head = nn.Linear(width, len(VOCABULARY))

    def forward(
        self, tokens: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits per position, hidden states per position, the last hidden state)."""
        states, last = self.gru(self.embedding(tokens), hidden)
        return self.head(states), states, last


def tiny_char_lm(seed: int = 0, width: int = 64) -> CharLM:
    """A CharLM with random weights drawn from `seed` (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CharLM(width).eval()


def encode(text: str) -> list[int]:
    """Token ids of `text` (a character outside the vocabulary reads as `?`)."""
    return [_INDEX.get(char, _UNKNOWN) for char in text]


def train(model: CharLM, text: str, steps: int = 200, budget_s: float = 10.0) -> CharLM:
    """Fit `model` to predict each next character of `text` (Adam, whole-text batches),
    for `steps` steps or `budget_s` seconds, whichever ends first; returns it in eval mode."""
    tokens = torch.tensor([encode(text)])
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


def generate(model: CharLM, request: GenerationRequest) -> Iterator[Any]:
    """One piece per generated character (see clipper.core.generation): the first a
    mapping with `prompt_tokens`, the last one with `finish_reason`. Greedy at temperature
    0, else sampled from `request.seed`; cut before the first stop string."""
    device = next(model.parameters()).device
    prompt = encode(request.prompt_text()) or [_INDEX["\n"]]
    sampler = torch.Generator().manual_seed(request.seed)
    scanner = StopScanner(request.stop)
    with torch.inference_mode():
        logits, _, hidden = model(torch.tensor([prompt], device=device))
    last = logits[0, -1]
    for step in range(request.max_tokens):
        token = _pick(last, request.temperature, sampler)
        piece: dict[str, Any] = {"text": scanner.feed(VOCABULARY[token])}
        if step == 0:
            piece["prompt_tokens"] = len(prompt)
        if scanner.stopped:
            yield {**piece, "finish_reason": "stop"}
            return
        if step == request.max_tokens - 1:
            yield {**piece, "text": piece["text"] + scanner.flush(), "finish_reason": "length"}
            return
        yield piece if len(piece) > 1 else piece["text"]
        with torch.inference_mode():
            logits, _, hidden = model(torch.tensor([[token]], device=device), hidden)
        last = logits[0, -1]


def _pick(logits: torch.Tensor, temperature: float, sampler: torch.Generator) -> int:
    """The next token: the likeliest at temperature 0, else one sampled."""
    if temperature <= 0:
        return int(logits.argmax())
    weights = torch.softmax(logits.float().cpu() / temperature, dim=-1)
    return int(torch.multinomial(weights, 1, generator=sampler))


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
