"""Hugging Face `transformers`: a causal language model (or an encoder, for embeddings)
saved with `save_pretrained` in a local directory, with its tokenizer; nothing is
downloaded, at deploy or in the worker (`local_files_only`).

Its `task` (clipper.core.generation) says how the worker serves it: `text-generation` and
`chat` stream one piece per token (a KV-cached step loop: greedy at temperature 0, else
sampled from the request's seed; ends at the end-of-text token, `max_tokens` or a stop
string; a chat request goes through the tokenizer's chat template when it has one),
`embedding` answers each text's mean last hidden state.

Served request-level (a stream per call), not as a step model (clipper.artifacts.stepping):
batched decoding needs one KV cache whose rows are sequences of different lengths joining
and leaving between steps (paged or ragged, per-row positions and masks, as vLLM and TGI
build); transformers' caches are a rectangular tensor per layer for a batch that starts
together, and stepping without a cache recomputes each whole text every step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from clipper.artifacts._framework import framework_environment
from clipper.artifacts._loading import ModelLoadError, PredictFunction, StreamFunction
from clipper.artifacts.format import build_artifact, directory_files
from clipper.artifacts.pytorch import choose_device
from clipper.core.exceptions import InvalidRequest
from clipper.core.generation import (
    EMBEDDING,
    TASKS,
    GenerationRequest,
    StopScanner,
    chat_prompt,
)
from clipper.environments.declare import EnvironmentArg

__all__ = ["load_transformers", "transformers_artifact"]

FRAMEWORKS = {"torch": "torch", "transformers": "transformers", "tokenizers": "tokenizers"}
MODEL_FOLDER = "model"


def transformers_artifact(
    model_dir: str | Path,
    *,
    task: str = "text-generation",
    device: str = "auto",
    environment: EnvironmentArg = "capture",
    pkgs_to_install: Sequence[str] = (),
) -> bytes:
    """A `transformers` artifact of the model and tokenizer saved in `model_dir` (its
    files as they are), served for `task`; the worker loads it on `device` (`auto`: CUDA
    when available)."""
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise InvalidRequest(f"{folder} holds no config.json (save_pretrained's directory)")
    if task not in TASKS:
        raise InvalidRequest(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    files = directory_files(folder, MODEL_FOLDER)
    declared = framework_environment(environment, (), FRAMEWORKS, pkgs_to_install)
    return build_artifact("transformers", files, declared, model_folder=MODEL_FOLDER,
                          task=task, device=device)  # fmt: skip


def load_transformers(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`transformers`: the tokenizer and model from the artifact's folder, in eval mode."""
    import torch
    import transformers

    folder = path / str(metadata.get("model_folder", MODEL_FOLDER))
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"the artifact has no model folder (expected at {folder})")
    device = choose_device(str(metadata.get("device", "auto")), torch.cuda.is_available())
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    task = str(metadata.get("task", "text-generation"))
    loader: Any = transformers.AutoModel if task == EMBEDDING else transformers.AutoModelForCausalLM
    model = loader.from_pretrained(folder, local_files_only=True).to(device).eval()
    if task == EMBEDDING:
        return lambda inputs: _embed(torch, model, tokenizer, inputs)

    def stream(inputs: list[Any]) -> Iterator[Any]:
        yield from _generate(torch, model, tokenizer, GenerationRequest.from_input(inputs[0]))

    return StreamFunction(stream)


def _prompt_ids(tokenizer: Any, request: GenerationRequest) -> list[int]:
    """The prompt's token ids: a chat through the tokenizer's template when it has one."""
    if request.prompt is None and getattr(tokenizer, "chat_template", None):
        messages = [dict(message) for message in request.messages]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, Mapping) else ids)
    text = request.prompt if request.prompt is not None else chat_prompt(request.messages)
    ids = list(tokenizer(text)["input_ids"])
    return ids or [tokenizer.eos_token_id or 0]


def _generate(torch: Any, model: Any, tokenizer: Any, request: GenerationRequest) -> Iterator[Any]:
    """One piece per generated token (clipper.core.generation): the first with
    `prompt_tokens`, the last with `finish_reason`."""
    device = next(model.parameters()).device
    prompt = _prompt_ids(tokenizer, request)
    sampler = torch.Generator().manual_seed(request.seed)
    scanner = StopScanner(request.stop)
    eos = tokenizer.eos_token_id
    generated: list[int] = []
    shown = ""
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prompt], device=device), use_cache=True)
    for step in range(request.max_tokens):
        token = _pick(torch, out.logits[0, -1], request.temperature, sampler)
        piece: dict[str, Any] = {"prompt_tokens": len(prompt)} if step == 0 else {}
        if token == eos:
            yield {**piece, "text": scanner.flush(), "finish_reason": "stop"}
            return
        generated.append(token)
        text = tokenizer.decode(generated, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a character's bytes not all out yet: wait for them
            piece["text"] = ""
        else:
            piece["text"], shown = scanner.feed(text[len(shown) :]), text
        if scanner.stopped:
            yield {**piece, "finish_reason": "stop"}
            return
        if step == request.max_tokens - 1:
            yield {**piece, "text": piece["text"] + scanner.flush(), "finish_reason": "length"}
            return
        yield piece if len(piece) > 1 else piece["text"]
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([[token]], device=device), use_cache=True,
                        **_cache_of(out))  # fmt: skip


def _cache_of(out: Any) -> dict[str, Any]:
    """The KV cache of a step's output, as the next step passes it: `cache` since
    transformers 5 (which deprecates the older `past_key_values`)."""
    if "cache" in out:
        return {"cache": out["cache"]}
    return {"past_key_values": out["past_key_values"]}


def _pick(torch: Any, logits: Any, temperature: float, sampler: Any) -> int:
    """The next token: the likeliest at temperature 0, else one sampled."""
    if temperature <= 0:
        return int(logits.argmax())
    weights = torch.softmax(logits.float().cpu() / temperature, dim=-1)
    return int(torch.multinomial(weights, 1, generator=sampler))


def _embed(torch: Any, model: Any, tokenizer: Any, inputs: list[Any]) -> list[dict[str, Any]]:
    """Each text's mean last hidden state, and its token count."""
    device = next(model.parameters()).device
    outputs = []
    for text in inputs:
        ids = tokenizer(str(text), return_tensors="pt")["input_ids"].to(device)
        with torch.inference_mode():
            states = model(input_ids=ids).last_hidden_state[0]
        outputs.append({"embedding": states.mean(dim=0).float().cpu().tolist(),
                        "prompt_tokens": int(ids.shape[1])})  # fmt: skip
    return outputs
