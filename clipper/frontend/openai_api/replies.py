"""The reply objects of the OpenAI-compatible API (as OpenAI's API reference shapes them):
completions, chat completions, their streamed chunks, embeddings and the model list."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from clipper.core.generation import Embedded, Generated

__all__ = [
    "Kind",
    "choice",
    "chunk",
    "completion",
    "embeddings",
    "model_list",
    "usage",
]

OWNER = "clipper"


class Kind:
    """What a reply's objects are called: a completion's, or a chat completion's."""

    __slots__ = ("chat", "chunk_object", "object", "prefix")

    def __init__(self, chat: bool) -> None:
        self.chat = chat
        self.object = "chat.completion" if chat else "text_completion"
        self.chunk_object = "chat.completion.chunk" if chat else "text_completion"
        self.prefix = "chatcmpl-" if chat else "cmpl-"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """A reply's `usage`."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip


def choice(kind: Kind, index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
    """One choice of a whole reply."""
    if kind.chat:
        message = {"role": "assistant", "content": text}
        return {"index": index, "message": message, "logprobs": None,
                "finish_reason": finish_reason}  # fmt: skip
    return {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}


def completion(
    kind: Kind, reply_id: str, model: str, results: Sequence[Generated], n: int
) -> dict[str, Any]:
    """A whole (chat) completion: each result a choice; prompt tokens counted once per
    prompt (its `n` choices share it)."""
    prompt_tokens = sum(result.prompt_tokens for result in results[::n])
    completion_tokens = sum(result.completion_tokens for result in results)
    return {
        "id": reply_id,
        "object": kind.object,
        "created": int(time.time()),
        "model": model,
        "choices": [
            choice(kind, index, result.text, result.finish_reason or "stop")
            for index, result in enumerate(results)
        ],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chunk(
    kind: Kind,
    reply_id: str,
    model: str,
    text: str | None,
    finish_reason: str | None = None,
    role: bool = False,
) -> dict[str, Any]:
    """One streamed chunk of choice 0: its new text (a chat chunk's `delta`, with the
    role on the first), and the finish reason on the last."""
    if kind.chat:
        delta: dict[str, str] = {"role": "assistant"} if role else {}
        if text is not None:
            delta["content"] = text
        streamed: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None,
                                    "finish_reason": finish_reason}  # fmt: skip
    else:
        streamed = {"index": 0, "text": text or "", "logprobs": None,
                    "finish_reason": finish_reason}  # fmt: skip
    return {"id": reply_id, "object": kind.chunk_object, "created": int(time.time()),
            "model": model, "choices": [streamed]}  # fmt: skip


def embeddings(model: str, embedded: Sequence[Embedded], as_base64: bool) -> dict[str, Any]:
    """An embeddings reply (`base64`: each vector's float32 bytes, little-endian)."""
    data = []
    for index, one in enumerate(embedded):
        vector: Any = one.vector
        if as_base64:
            vector = base64.b64encode(np.asarray(one.vector, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(one.prompt_tokens for one in embedded)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip


def model_list(models: Sequence[tuple[str, str, float]]) -> dict[str, Any]:
    """`GET /v1/models`: (app, task, created) each."""
    return {
        "object": "list",
        "data": [
            {
                "id": name,
                "object": "model",
                "created": int(created),
                "owned_by": OWNER,
                "task": task,
            }
            for name, task, created in models
        ],
    }
