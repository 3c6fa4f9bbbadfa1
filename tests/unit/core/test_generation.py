"""The generative models' contract: requests as inputs, stop strings, pieces and outputs."""

from __future__ import annotations

import pytest

from clipper.core.exceptions import InvalidRequest
from clipper.core.generation import (
    GenerationRequest,
    StopScanner,
    chat_prompt,
    parse_task,
    read_embedding,
    read_generated,
    read_piece,
)


def test_a_request_is_the_same_bytes_each_time_and_reads_back() -> None:
    request = GenerationRequest(prompt="hi", max_tokens=3, temperature=0.0, stop=("x",), seed=4)
    same = GenerationRequest(seed=4, stop=("x",), temperature=0.0, max_tokens=3, prompt="hi")
    assert request.to_json() == same.to_json()
    assert GenerationRequest.from_input(request.to_json()) == request


def test_any_other_text_is_a_prompt() -> None:
    assert GenerationRequest.from_input("just text").prompt == "just text"
    assert GenerationRequest.from_input("[1, 2]").prompt == "[1, 2]"


def test_chat_messages_render_into_one_prompt() -> None:
    request = GenerationRequest.from_input(
        b'{"messages": [{"role": "system", "content": "Be brief"},'
        b' {"role": "user", "content": "Hi"}]}'
    )
    assert request.prompt is None
    assert request.prompt_text() == "system: Be brief\nuser: Hi\nassistant:"
    assert chat_prompt([]) == "assistant:"


@pytest.mark.parametrize(
    ("pieces", "stop", "emitted"),
    [
        (["ab", "c", "de"], ["cd"], "ab"),  # the stop string spans two pieces
        (["a", "b", "c"], ["bd"], "abc"),  # a held "b" let out at the end
        (["hello", " world"], [], "hello world"),
        (["xSTO", "P", "more"], ["STOP", "zz"], "x"),
    ],
)
def test_a_stop_scanner_never_lets_out_a_stop_string(
    pieces: list[str], stop: list[str], emitted: str
) -> None:
    scanner = StopScanner(stop)
    out = "".join(scanner.feed(piece) for piece in pieces) + scanner.flush()
    assert out == emitted
    assert scanner.stopped == (emitted != "".join(pieces))


def test_a_held_tail_is_not_let_out_until_it_is_known() -> None:
    scanner = StopScanner(["END"])
    assert scanner.feed("okE") == "ok"
    assert scanner.feed("N") == ""
    assert scanner.feed("x") == "ENx"


def test_outputs_read_as_one_result() -> None:
    pieces = [{"text": "a", "prompt_tokens": 3}, "b", {"text": "c", "finish_reason": "length"}]
    result = read_generated(pieces)
    assert (result.text, result.prompt_tokens, result.completion_tokens) == ("abc", 3, 3)
    assert result.finish_reason == "length"
    assert read_generated("abc").text == "abc"
    assert read_generated({"text": "x", "completion_tokens": 2}).completion_tokens == 2
    assert read_piece("z").completion_tokens == 1
    with pytest.raises(TypeError):
        read_generated(3)


def test_embeddings_read_as_vectors() -> None:
    assert read_embedding([1, 2.5]).vector == [1.0, 2.5]
    assert read_embedding({"embedding": [0.5], "prompt_tokens": 2}).prompt_tokens == 2
    with pytest.raises(TypeError):
        read_embedding(["a"])


def test_tasks_are_checked() -> None:
    assert parse_task("chat") == "chat"
    assert parse_task(None) is None
    with pytest.raises(InvalidRequest):
        parse_task("translation")
