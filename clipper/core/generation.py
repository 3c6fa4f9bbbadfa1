"""Generative models' contract: the tasks a version declares, the request its input carries,
and the pieces and outputs it answers with (the OpenAI-compatible API's side is
clipper.frontend.openai_api; the models' side clipper.models and clipper.artifacts).

A version deployed with a `task` (`TASKS`) takes `strings` inputs:

- `text-generation` and `chat`: each input is the JSON text of a `GenerationRequest`
  (`{"prompt": ...}` or, for `chat`, `{"messages": [...]}`, plus `max_tokens`,
  `temperature`, `stop` and `seed`). A streaming model yields one piece per token: its
  text (a str), or a mapping with `text` and optionally `prompt_tokens` (the prompt's
  length in tokens, usually on the first piece) and `finish_reason` (`stop` or `length`).
  A model that does not stream answers the whole text, a list of such pieces, or a mapping
  `{"text", "prompt_tokens", "completion_tokens", "finish_reason"}`.
- `embedding`: each input is the text itself; the output is its vector (a list of floats),
  or a mapping `{"embedding": [...], "prompt_tokens": n}`.

The input determines the output: a sampled request (`temperature` > 0) always carries a
`seed`, so identical inputs may share an answer (the prediction cache) without changing
what sampling means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from clipper.core.exceptions import InvalidRequest

__all__ = [
    "CHAT",
    "DEFAULT_MAX_TOKENS",
    "EMBEDDING",
    "TASKS",
    "TEXT_GENERATION",
    "Embedded",
    "Generated",
    "GenerationRequest",
    "StopScanner",
    "chat_prompt",
    "parse_task",
    "read_embedding",
    "read_generated",
    "read_piece",
]

TEXT_GENERATION = "text-generation"
CHAT = "chat"
EMBEDDING = "embedding"
TASKS = (TEXT_GENERATION, CHAT, EMBEDDING)
"""What a generative version declares it does (None: not generative)."""

DEFAULT_MAX_TOKENS = 16


def parse_task(value: object) -> str | None:
    """A declared task (None: none); InvalidRequest for anything but `TASKS`."""
    if value is None:
        return None
    if isinstance(value, str) and value in TASKS:
        return value
    raise InvalidRequest(f"task must be one of {', '.join(TASKS)} (or null), not {value!r}")


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What one generation input asks: a `prompt` or chat `messages` (one of the two),
    at most `max_tokens` tokens, sampled at `temperature` (0: greedy) from `seed`, ending
    before the first of the `stop` strings."""

    prompt: str | None = None
    messages: tuple[Mapping[str, str], ...] = ()
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0

    def to_json(self) -> bytes:
        """The input's JSON text (keys sorted: equal requests are equal bytes)."""
        body: dict[str, Any] = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": list(self.stop),
            "seed": self.seed,
        }
        if self.prompt is not None:
            body["prompt"] = self.prompt
        else:
            body["messages"] = [dict(message) for message in self.messages]
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_input(cls, value: str | bytes) -> GenerationRequest:
        """The request an input carries: its JSON text, or any other text as the prompt."""
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return cls(prompt=value if isinstance(value, str) else value.decode())
        messages = body.get("messages") or ()
        return cls(
            prompt=None if messages else str(body.get("prompt", "")),
            messages=tuple(dict(message) for message in messages),
            max_tokens=int(body.get("max_tokens", DEFAULT_MAX_TOKENS)),
            temperature=float(body.get("temperature", 1.0)),
            stop=tuple(str(stop) for stop in body.get("stop") or ()),
            seed=int(body.get("seed", 0)),
        )

    def prompt_text(self) -> str:
        """The text to continue: the prompt, or the messages rendered by `chat_prompt`."""
        return self.prompt if self.prompt is not None else chat_prompt(self.messages)


def chat_prompt(messages: Iterable[Mapping[str, str]]) -> str:
    """Chat messages as one prompt, for a model without a chat template of its own:
    `role: content` per line, then `assistant:` to continue."""
    lines = [f"{message.get('role', 'user')}: {message.get('content', '')}" for message in messages]
    return "\n".join([*lines, "assistant:"])


class StopScanner:
    """Cuts generated text before the first stop string: `feed` each piece, emit what it
    returns. Invariant: the text held back is the longest tail of what was fed that starts
    some stop string, so no emitted text is ever part of a stop string."""

    def __init__(self, stop: Sequence[str]) -> None:
        self._stop = [text for text in stop if text]
        self._held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """The text that may be emitted now (none once `stopped`)."""
        if self.stopped:
            return ""
        text = self._held + piece
        for stop in self._stop:
            found = text.find(stop)
            if found != -1:
                self.stopped = True
                self._held = ""
                return text[:found]
        keep = self._tail_to_hold(text)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """What is held back, at the end of the text (it was no stop string after all)."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _tail_to_hold(self, text: str) -> int:
        longest = 0
        for stop in self._stop:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if stop.startswith(text[len(text) - size :]):
                    longest = size
                    break
        return longest


@dataclass(slots=True)
class Generated:
    """A generation's result as the API reports it."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


def read_piece(piece: Any) -> Generated:
    """One streamed piece (one token): its text, and what else it reports."""
    if isinstance(piece, str):
        return Generated(piece, completion_tokens=1)
    if isinstance(piece, Mapping):
        return Generated(
            str(piece.get("text", "")),
            int(piece.get("prompt_tokens", 0)),
            int(piece.get("completion_tokens", 1)),
            piece.get("finish_reason"),
        )
    return Generated(str(piece), completion_tokens=1)


def read_generated(output: Any) -> Generated:
    """A whole generation output (see the module's docstring) as one result."""
    if isinstance(output, str):
        return Generated(output, completion_tokens=0)
    if isinstance(output, Mapping):
        return Generated(
            str(output.get("text", "")),
            int(output.get("prompt_tokens", 0)),
            int(output.get("completion_tokens", 0)),
            output.get("finish_reason"),
        )
    if isinstance(output, list):
        total = Generated()
        for piece in output:
            one = read_piece(piece)
            total.text += one.text
            total.prompt_tokens += one.prompt_tokens
            total.completion_tokens += one.completion_tokens
            total.finish_reason = one.finish_reason or total.finish_reason
        return total
    raise TypeError(f"a generation output is text, pieces or a mapping, not {type(output)}")


@dataclass(frozen=True, slots=True)
class Embedded:
    """One embedding as the API reports it."""

    vector: list[float] = field(default_factory=list)
    prompt_tokens: int = 0


def read_embedding(output: Any) -> Embedded:
    """An embedding output: its vector (a list of numbers) and its token count."""
    tokens = 0
    if isinstance(output, Mapping):
        tokens = int(output.get("prompt_tokens", 0))
        output = output.get("embedding")
    if not isinstance(output, list) or not all(isinstance(x, (int, float)) for x in output):
        raise TypeError("an embedding output is a list of numbers")
    return Embedded([float(x) for x in output], tokens)
