"""A Hugging Face `transformers` causal LM deployed from a local directory with
clipper_admin's deployer and queried through the OpenAI-compatible API (issue 24): a tiny
GPT-2 and a byte-level BPE tokenizer configured and saved by the test (nothing downloaded)
answer greedy completions as `model.generate` does here, streamed and not, and embed."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from clipper_admin import ClipperConnection
from tests.integration.clipper_admin_cluster import admin_cluster

pytestmark = pytest.mark.integration

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat."
EOS = "<|endoftext|>"


def save_tiny_gpt2(folder: Path) -> Any:
    """A 1-layer GPT-2 with random weights (seed 0) and a BPE tokenizer trained on TEXT."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        [TEXT],
        trainers.BpeTrainer(vocab_size=300, special_tokens=[EOS],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )  # fmt: skip
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS)
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=1, n_head=2,
        bos_token_id=eos_id, eos_token_id=eos_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    model, tokenizer = save_tiny_gpt2(folder)
    return folder, model, tokenizer


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, saved: tuple[Path, Any, Any]
) -> Iterator[openai.OpenAI]:
    from clipper_admin.deployers.transformers import deploy_transformers_model

    with admin_cluster(tmp_path_factory.mktemp("hf") / "state", "hf") as conn:

        def deploy(name: str, task: str) -> None:
            register(conn, name)
            deploy_transformers_model(conn, name, 1, saved[0], task=task, device="cpu")
            conn.link_model_to_app(name, name)

        with ThreadPoolExecutor(2) as deploys:  # the two workers start side by side
            started = [deploys.submit(deploy, "gpt", "text-generation"),
                       deploys.submit(deploy, "gpt-embed", "embedding")]  # fmt: skip
            for each in started:
                each.result()
        url = f"http://{conn.get_query_addr()}/v1"
        with openai.OpenAI(base_url=url, api_key="-", max_retries=0, timeout=30) as made:
            yield made


def register(conn: ClipperConnection, name: str) -> None:
    conn.register_application(name, "strings", "-", 10_000_000)


def greedy_here(model: Any, tokenizer: Any, prompt: str, tokens: int) -> str:
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=tokens, do_sample=False,
                             pad_token_id=tokenizer.eos_token_id)  # fmt: skip
    return str(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


def test_greedy_completions_are_what_generate_gives(
    client: openai.OpenAI, saved: tuple[Path, Any, Any]
) -> None:
    _, model, tokenizer = saved
    wanted = greedy_here(model, tokenizer, "the cat", 8)
    reply = client.completions.create(model="gpt", prompt="the cat", max_tokens=8, temperature=0)
    assert reply.choices[0].text == wanted
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == len(tokenizer("the cat")["input_ids"])
    chunks = list(client.completions.create(model="gpt", prompt="the cat", max_tokens=8,
                                            temperature=0, stream=True))  # fmt: skip
    assert "".join(chunk.choices[0].text for chunk in chunks) == wanted


def test_the_encoder_embeds(client: openai.OpenAI, saved: tuple[Path, Any, Any]) -> None:
    _, model, tokenizer = saved
    ids = tokenizer("a dog", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        wanted = model.transformer(input_ids=ids).last_hidden_state[0].mean(dim=0).tolist()
    reply = client.embeddings.create(model="gpt-embed", input="a dog", encoding_format="float")
    assert reply.data[0].embedding == pytest.approx(wanted, abs=1e-5)


def test_a_chat_goes_through_the_tokenizers_template(
    saved: tuple[Path, Any, Any], tmp_path: Path
) -> None:
    """The worker's side, in this process: a `chat` model with a chat template."""
    import io
    import shutil
    import tarfile

    from clipper.artifacts.loader import load_model
    from clipper.artifacts.transformers import transformers_artifact
    from clipper.core.generation import GenerationRequest, read_generated

    folder, model, tokenizer = saved
    templated = tmp_path / "templated"
    shutil.copytree(folder, templated)
    chatty = transformers.AutoTokenizer.from_pretrained(folder)
    chatty.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}the"
    chatty.save_pretrained(templated)
    artifact = transformers_artifact(templated, task="chat", device="cpu")
    with tarfile.open(fileobj=io.BytesIO(artifact)) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    predict = load_model(tmp_path / "unpacked")

    messages = ({"role": "user", "content": "a dog"},)
    request = GenerationRequest(messages=messages, max_tokens=6, temperature=0)
    result = read_generated(list(predict([request.to_json().decode()])))

    assert result.text == greedy_here(model, tokenizer, "a dog the", 6)
    assert result.prompt_tokens == len(tokenizer("a dog the")["input_ids"])
