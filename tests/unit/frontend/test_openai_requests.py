"""The OpenAI-compatible API's request bodies and error shape (clipper.frontend.openai_api)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clipper.core.exceptions import ClipperError, Overloaded, Unauthorized
from clipper.frontend.openai_api.errors import openai_error, openai_error_reply
from clipper.frontend.openai_api.requests import (
    as_prompts,
    read_chat,
    read_completion,
    read_embeddings,
)


def body(**fields: Any) -> bytes:
    return orjson.dumps({"model": "lm", **fields})


def test_greedy_choices_are_identical_inputs_sampled_ones_are_seeded_apart() -> None:
    greedy = read_completion(body(prompt="a", n=2, temperature=0))
    assert greedy.choices[0].to_json() == greedy.choices[1].to_json()
    sampled = read_completion(body(prompt="a", n=2, seed=5))
    assert [choice.seed for choice in sampled.choices] == [5, 6]
    unseeded = read_completion(body(prompt=["a", "b"], max_tokens=3))
    assert len(unseeded.choices) == 2
    assert unseeded.choices[0].seed != 0
    assert unseeded.choices[1].prompt == "b"


def test_chat_messages_stay_for_a_chat_model_and_render_for_others() -> None:
    asked = read_chat(body(messages=[{"role": "user", "content": [{"text": "Hi"}]}], stop="x"))
    assert asked.choices[0].messages == ({"role": "user", "content": "Hi"},)
    assert asked.stop == ("x",)
    assert as_prompts(asked).choices[0].prompt == "user: Hi\nassistant:"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": 3}, "prompt"),
        ({"prompt": "a", "temperature": 3}, "temperature"),
        ({"prompt": "a", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "a", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"prompt": "a", "n": 2, "stream": True}, "n"),
        ({"prompt": "a", "seed": "x"}, "seed"),
    ],
)
def test_a_bad_field_is_named_in_the_error(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(ClipperError) as raised:
        read_completion(body(**fields))
    assert openai_error(raised.value)["param"] == param
    assert openai_error_reply(raised.value).status == 400


def test_embeddings_take_texts_not_tokens() -> None:
    assert read_embeddings(body(input="a")).texts == ("a",)
    assert read_embeddings(body(input=["a"], encoding_format="base64")).base64
    with pytest.raises(ClipperError):
        read_embeddings(body(input=[1, 2]))


def test_errors_take_the_tables_status_and_openais_type() -> None:
    refused = openai_error_reply(Unauthorized("no key"))
    assert refused.status == 401
    assert orjson.loads(refused.body)["error"] == {
        "message": "no key", "type": "authentication_error", "param": None,
        "code": "Unauthorized",
    }  # fmt: skip
    assert any(name == b"www-authenticate" for name, _ in refused.headers)
    busy = openai_error_reply(Overloaded("full", retry_after_s=2.5))
    assert (busy.status, orjson.loads(busy.body)["error"]["type"]) == (429, "rate_limit_error")
    assert (b"retry-after", b"3") in busy.headers
    assert openai_error(ValueError("secret"))["message"] == "unexpected server error"
