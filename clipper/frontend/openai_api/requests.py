"""The request bodies of the OpenAI-compatible API, read into what the query path asks.

Fields read (others are accepted and ignored, as OpenAI's own servers ignore unknown
ones): `model` (the app), `prompt` (a string or a list of strings) or `messages`,
`max_tokens` (or `max_completion_tokens`), `temperature` (0: greedy), `stop` (a string or
up to 4), `seed`, `n`, `stream`, `stream_options.include_usage`; for embeddings `input` (a
string or a list of strings) and `encoding_format` (`float` or `base64`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from clipper.core.generation import DEFAULT_MAX_TOKENS, GenerationRequest
from clipper.frontend.openai_api.errors import field_error

__all__ = [
    "Asked",
    "EmbeddingsAsked",
    "as_prompts",
    "read_chat",
    "read_completion",
    "read_embeddings",
]

MAX_N = 16
MAX_STOPS = 4
MAX_SEED = 2**31 - 1
DEFAULT_TEMPERATURE = 1.0  # OpenAI's


@dataclass(frozen=True, slots=True)
class Asked:
    """A completion or chat request: the app, one `GenerationRequest` per choice (each
    prompt's `n` choices in turn), and how to answer."""

    model: str
    choices: tuple[GenerationRequest, ...]
    n: int
    stream: bool
    include_usage: bool
    stop: tuple[str, ...]
    max_tokens: int


@dataclass(frozen=True, slots=True)
class EmbeddingsAsked:
    """An embeddings request: the app, its texts, and `base64` or `float` vectors."""

    model: str
    texts: tuple[str, ...]
    base64: bool


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise field_error("body", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise field_error("body", "the body must be a JSON object")
    return body


def _model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise field_error("model", "'model' (an application's name) is required")
    return model


def _int(body: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise field_error(name, f"'{name}' must be an integer from {low} to {high}")
    return value


def _temperature(body: Mapping[str, Any]) -> float:
    value = body.get("temperature")
    if value is None:
        return DEFAULT_TEMPERATURE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
        raise field_error("temperature", "'temperature' must be a number from 0 to 2")
    return float(value)


def _stop(body: Mapping[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOPS
        or not all(isinstance(s, str) for s in stops)
    ):
        raise field_error("stop", f"'stop' must be a string or a list of up to {MAX_STOPS}")
    return tuple(stops)


def _stream(body: Mapping[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream") is True
    options = body.get("stream_options")
    usage = isinstance(options, dict) and options.get("include_usage") is True
    return stream, stream and usage


def _asked(body: Mapping[str, Any], prompts: list[GenerationRequest]) -> Asked:
    """Each prompt's `n` choices: one seed for greedy ones (identical inputs share one
    computation), else one seed each, drawn when the request has none."""
    n = _int(body, "n", 1, 1, MAX_N)
    stream, include_usage = _stream(body)
    if stream and (n > 1 or len(prompts) > 1):
        raise field_error("n", "a streamed request asks for one prompt and one choice (n: 1)")
    temperature = _temperature(body)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise field_error("seed", "'seed' must be an integer")
    limit = body.get("max_tokens", body.get("max_completion_tokens"))
    max_tokens = _int({"max_tokens": limit}, "max_tokens", DEFAULT_MAX_TOKENS, 1, 1 << 20)
    stop = _stop(body)
    choices = []
    for prompt in prompts:
        base = random.randrange(MAX_SEED) if seed is None and temperature > 0 else seed or 0
        for index in range(n):
            choice_seed = 0 if temperature == 0 else (base + index) % (MAX_SEED + 1)
            choices.append(
                GenerationRequest(
                    prompt.prompt, prompt.messages, max_tokens, temperature, stop, choice_seed
                )
            )
    return Asked(_model(body), tuple(choices), n, stream, include_usage, stop, max_tokens)


def read_completion(raw: bytes) -> Asked:
    """A `/v1/completions` body."""
    body = _body(raw)
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise field_error("prompt", "'prompt' must be a string or a list of strings")
    return _asked(body, [GenerationRequest(prompt=p) for p in prompts])


def read_chat(raw: bytes) -> Asked:
    """A `/v1/chat/completions` body."""
    body = _body(raw)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise field_error("messages", "'messages' must be a non-empty list")
    read = tuple(_message(index, message) for index, message in enumerate(messages))
    return _asked(body, [GenerationRequest(messages=read)])


def as_prompts(asked: Asked) -> Asked:
    """A chat request for a model that takes prompts: each choice's messages rendered
    into one prompt (clipper.core.generation.chat_prompt)."""
    choices = tuple(
        replace(choice, prompt=choice.prompt_text(), messages=()) for choice in asked.choices
    )
    return replace(asked, choices=choices)


def _message(index: int, message: Any) -> dict[str, str]:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise field_error(f"messages[{index}]", "each message has a 'role' and a 'content'")
    content = message.get("content")
    if isinstance(content, list):  # content parts: their text
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise field_error(f"messages[{index}].content", "a message's content must be text")
    return {"role": message["role"], "content": content}


def read_embeddings(raw: bytes) -> EmbeddingsAsked:
    """A `/v1/embeddings` body (token arrays are not taken: the texts are)."""
    body = _body(raw)
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise field_error("input", "'input' must be a string or a list of strings")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise field_error("encoding_format", "'encoding_format' must be 'float' or 'base64'")
    return EmbeddingsAsked(_model(body), tuple(texts), encoding == "base64")
