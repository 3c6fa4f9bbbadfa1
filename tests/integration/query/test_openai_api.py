"""The OpenAI-compatible API through a real server and workers, driven by the unmodified
`openai` client (issue 24): models listed, completions and chats (streamed and not) of
the tiny character LM (clipper.models.char_lm), embeddings, OpenAI's error shape, query
tokens as bearer keys, the cache for greedy requests, a stream cut at `max_tokens`
stopping the model, and the LM's step form (`CharLMSteps`) batching concurrent streams
continuously.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from clipper.artifacts.python import closure_artifact
from clipper.artifacts.pytorch import pytorch_artifact
from clipper.core.generation import GenerationRequest
from clipper.models.char_lm import CharLMSteps, embed, generate, stream, tiny_char_lm
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, metric, wait_until

pytestmark = pytest.mark.integration

SEED = 7
STEP_MODEL = tiny_char_lm(SEED, width=256, mean_tokens=60)
"""The step form's model: wider (slower steps: concurrent streams overlap), with an end."""


def endless(counter: str) -> Any:
    """A streaming model that ignores max_tokens: a piece every 20 ms, each step counted."""

    def pieces(inputs: list[Any]) -> Iterator[str]:
        for _ in range(500):
            time.sleep(0.02)
            with open(counter, "a") as steps:
                steps.write("x")
            yield "ab"

    return pieces


def broken(inputs: list[Any]) -> Iterator[str]:
    """A streaming model that fails after its first piece."""
    yield "fine so far"
    raise RuntimeError("broken mid-stream")


def late(inputs: list[Any]) -> Iterator[str]:
    """A streaming model whose first piece comes after 600 ms."""
    time.sleep(0.6)
    yield "late"


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("openai") / "steps"


@pytest.fixture(scope="module")
def server(module_server: ServerFactory, counter: Path) -> ServerHandle:
    handle = module_server("openai")
    admin = handle.admin
    model = tiny_char_lm(SEED)

    def deploy_lm(name: str, artifact: bytes, task: str) -> None:
        admin.add_app(name, "strings", "-", 5_000_000)
        admin.deploy_artifact(name, 1, "strings", artifact, task=task)
        admin.add_model_links(name, [name])

    with ThreadPoolExecutor(4) as deploys:  # the workers start side by side
        started = [
            deploys.submit(deploy_lm, "lm", pytorch_artifact(model, stream), "text-generation"),
            deploys.submit(deploy_lm, "chatlm", pytorch_artifact(model, stream), "chat"),
            deploys.submit(deploy_lm, "emb", pytorch_artifact(model, embed), "embedding"),
            deploys.submit(deploy_lm, "steplm", closure_artifact(CharLMSteps(STEP_MODEL)),
                           "text-generation"),
        ]  # fmt: skip
        deploy(handle, "endless", endless(str(counter)), input_type="strings",
               task="text-generation")  # fmt: skip
        deploy(handle, "plain", lambda xs: [1.0 for _ in xs], input_type="strings")
        deploy(handle, "broken", broken, input_type="strings", task="text-generation")
        deploy(handle, "late", late, input_type="strings", task="text-generation",
               slo_us=150_000)  # fmt: skip
        for each in started:
            each.result()
    admin.add_app("locked", "strings", "-", 5_000_000)
    admin.add_model_links("locked", ["lm"])
    handle.admin_http("set_app_query_auth", {"app_name": "locked", "require_query_token": True})
    return handle


@pytest.fixture(scope="module")
def client(server: ServerHandle) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.query_url}/v1", api_key="unused", max_retries=0,
                       timeout=30) as made:  # fmt: skip
        yield made


def expected(prompt: str, **fields: Any) -> str:
    """What the char LM generates, run here in-process."""
    request = GenerationRequest(prompt=prompt, **fields)
    return "".join(
        p if isinstance(p, str) else p["text"] for p in generate(tiny_char_lm(SEED), request)
    )


def test_models_lists_the_generative_apps_the_key_opens(client: openai.OpenAI) -> None:
    listed = {model.id for model in client.models.list()}
    assert listed == {
        "lm",
        "chatlm",
        "emb",
        "steplm",
        "endless",
        "broken",
        "late",
    }  # not plain (no task), nor locked
    assert client.models.retrieve("emb").owned_by == "clipper"


def test_a_greedy_completion_is_the_models_text_and_is_cached(
    client: openai.OpenAI, server: ServerHandle
) -> None:
    hits = metric(server, "clipper_model_cache_hits_total", model="lm")
    first = client.completions.create(model="lm", prompt="Hello", max_tokens=12, temperature=0)
    again = client.completions.create(model="lm", prompt="Hello", max_tokens=12, temperature=0)
    assert (
        first.choices[0].text
        == again.choices[0].text
        == expected("Hello", max_tokens=12, temperature=0)
    )
    assert first.choices[0].finish_reason == "length"
    assert first.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (5, 12)
    assert metric(server, "clipper_model_cache_hits_total", model="lm") == hits + 1


def test_sampled_completions_differ_by_seed_and_n_gives_choices(client: openai.OpenAI) -> None:
    reply = client.completions.create(model="lm", prompt="a", max_tokens=20, n=3, seed=1)
    texts = [choice.text for choice in reply.choices]
    assert [choice.index for choice in reply.choices] == [0, 1, 2]
    assert len(set(texts)) == 3
    assert texts[0] == expected("a", max_tokens=20, seed=1, temperature=1.0)


def test_a_stop_string_ends_the_text_before_it(client: openai.OpenAI) -> None:
    whole = expected("Hello", max_tokens=12, temperature=0)
    stop = whole[4:6]
    reply = client.completions.create(
        model="lm", prompt="Hello", max_tokens=12, temperature=0, stop=[stop]
    )
    assert reply.choices[0].text == whole[: whole.index(stop)]
    assert reply.choices[0].finish_reason == "stop"


def test_chat_without_and_with_stream(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Hi there"}]
    whole = client.chat.completions.create(
        model="chatlm", messages=messages, max_tokens=10, temperature=0
    )
    text = whole.choices[0].message.content
    assert whole.choices[0].message.role == "assistant"
    assert text == expected("user: Hi there\nassistant:", max_tokens=10, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model="chatlm", messages=messages, max_tokens=10, temperature=0, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == text
    assert len([p for p in pieces if p]) > 1  # one chunk per token, not one in all
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 10


def test_a_text_generation_app_chats_on_its_rendered_prompt(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="lm", messages=[{"role": "user", "content": "Hi"}], max_tokens=5, temperature=0
    )
    assert reply.choices[0].message.content == expected(
        "user: Hi\nassistant:", max_tokens=5, temperature=0
    )


def test_a_streamed_completion_cut_at_max_tokens_stops_the_model(
    client: openai.OpenAI, counter: Path
) -> None:
    chunks = list(client.completions.create(model="endless", prompt="x", max_tokens=3,
                                            stream=True))  # fmt: skip
    assert "".join(c.choices[0].text for c in chunks) == "ababab"
    assert chunks[-1].choices[0].finish_reason == "length"
    wait_until(counter.exists, 10, "the model's first step")
    time.sleep(0.5)  # the model would have run ~25 more steps by now
    assert len(counter.read_text()) <= 5


def test_embeddings_as_floats_and_as_base64(client: openai.OpenAI) -> None:
    by_default = client.embeddings.create(model="emb", input=["cat", "dog"])  # base64 asked
    as_floats = client.embeddings.create(model="emb", input="cat", encoding_format="float")
    wanted = embed(tiny_char_lm(SEED), ["cat"])[0]["embedding"]
    assert len(by_default.data) == 2
    assert by_default.data[0].embedding == pytest.approx(wanted, abs=1e-5)
    assert as_floats.data[0].embedding == pytest.approx(wanted, abs=1e-6)
    assert by_default.data[1].embedding != by_default.data[0].embedding
    assert by_default.usage.prompt_tokens == 6


def test_errors_have_openais_shape_and_status(client: openai.OpenAI, server: ServerHandle) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="nope", prompt="x")
    assert missing.value.body == {
        "message": "The model 'nope' does not exist", "type": "invalid_request_error",
        "param": "model", "code": "UnknownApplication",
    }  # fmt: skip
    with pytest.raises(openai.BadRequestError) as wrong_task:
        client.embeddings.create(model="lm", input="x")
    assert wrong_task.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as no_task:
        client.completions.create(model="plain", prompt="x")
    assert "not a generative model" in no_task.value.message
    with pytest.raises(openai.BadRequestError) as bad_field:
        client.completions.create(model="lm", prompt="x", temperature=5)
    assert bad_field.value.body["param"] == "temperature"  # type: ignore[index]
    reply = httpx.post(f"{server.query_url}/v1/nothing", json={}, timeout=10)
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "NotFound"


def test_query_tokens_are_bearer_keys(server: ServerHandle) -> None:
    url = f"{server.query_url}/v1"
    with openai.OpenAI(base_url=url, api_key="wrong", max_retries=0) as anonymous:
        with pytest.raises(openai.AuthenticationError) as refused:
            anonymous.completions.create(model="locked", prompt="x", max_tokens=2)
        assert refused.value.body["type"] == "authentication_error"  # type: ignore[index]
    token = server.admin_http("create_query_token", {"apps": ["locked"]}).json()["token"]
    with openai.OpenAI(base_url=url, api_key=token, max_retries=0) as keyed:
        assert "locked" in {model.id for model in keyed.models.list()}
        reply = keyed.completions.create(model="locked", prompt="x", max_tokens=2)
        assert reply.usage is not None
        assert reply.usage.completion_tokens == 2


def test_an_error_mid_stream_ends_it_with_an_error_event(client: openai.OpenAI) -> None:
    chunks = client.completions.create(model="broken", prompt="x", stream=True)
    texts: list[str] = []
    with pytest.raises(openai.APIError) as raised:
        texts.extend(chunk.choices[0].text for chunk in chunks)
    assert texts == ["fine so far"]
    assert "RuntimeError" in raised.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_a_missed_slo_is_a_504_before_any_chunk(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.InternalServerError) as missed:
        client.completions.create(model="late", prompt="x", stream=stream)
    assert missed.value.status_code == 504
    assert missed.value.body["code"] == "DeadlineExceeded"  # type: ignore[index]
    assert "latency SLO" in missed.value.message


def test_the_example_trains_serves_and_completes(server: ServerHandle) -> None:
    """examples/openai/serve_char_lm.py against this server (examples are no package)."""
    path = Path(__file__).resolve().parents[3] / "examples" / "openai" / "serve_char_lm.py"
    spec = importlib.util.spec_from_file_location("serve_char_lm", path)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.deploy(server.admin, budget_s=5.0)
    text = example.complete(f"{server.query_url}/v1", "the dog ")
    assert text
    assert "." not in text  # its stop string


def expected_steps(prompt: str, **fields: Any) -> str:
    request = GenerationRequest(prompt=prompt, **fields)
    return "".join(p if isinstance(p, str) else p["text"] for p in generate(STEP_MODEL, request))


def test_the_step_form_completes_and_chats_as_the_model_does(client: openai.OpenAI) -> None:
    reply = client.completions.create(model="steplm", prompt="Hi", max_tokens=40, seed=2)
    assert reply.choices[0].text == expected_steps("Hi", max_tokens=40, seed=2, temperature=1.0)
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 2
    chunks = list(client.chat.completions.create(
        model="steplm", messages=[{"role": "user", "content": "Yo"}], max_tokens=30, seed=4,
        stream=True,
    ))  # fmt: skip
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == expected_steps("user: Yo\nassistant:", max_tokens=30, seed=4, temperature=1.0)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def streamed_text(client: openai.OpenAI, seed: int) -> tuple[str, str | None]:
    chunks = list(client.completions.create(model="steplm", prompt=f"s{seed}", max_tokens=128,
                                            seed=seed, stream=True))  # fmt: skip
    text = "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    return text, chunks[-1].choices[0].finish_reason


def test_concurrent_streams_share_steps_each_with_its_own_text(
    client: openai.OpenAI, server: ServerHandle
) -> None:
    """Eight streams at once (tried up to three times, for the loaded machine): each is
    the model's text for its seed, ended by the model or max_tokens, and steps ran more
    than one sequence."""
    seeds = list(range(100, 108))
    wanted = [expected_steps(f"s{seed}", max_tokens=128, seed=seed, temperature=1.0)
              for seed in seeds]  # fmt: skip
    assert len({len(text) for text in wanted}) > 3  # lengths of the model's own
    for _ in range(3):
        sizes = metric(server, "clipper_model_batch_size_sum", model="steplm")
        steps = metric(server, "clipper_model_batch_size_count", model="steplm")
        with ThreadPoolExecutor(len(seeds)) as streams:
            got = list(streams.map(lambda seed: streamed_text(client, seed), seeds))
        assert [text for text, _ in got] == wanted
        assert {reason for _, reason in got} <= {"stop", "length"}
        sizes = metric(server, "clipper_model_batch_size_sum", model="steplm") - sizes
        steps = metric(server, "clipper_model_batch_size_count", model="steplm") - steps
        if sizes / steps >= 1.5:
            return
    pytest.fail(f"streams did not share steps: {sizes:.0f} sequences in {steps:.0f} steps")
