"""Deploy a Hugging Face `transformers` model saved in a local directory (its model and
tokenizer, `save_pretrained`'s files): a streaming causal language model served by the
OpenAI-compatible API (`text-generation` or `chat`), or an `embedding` model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clipper.artifacts.transformers import transformers_artifact
from clipper.environments.declare import EnvironmentArg
from clipper_admin.clipper_admin import ClipperConnection, Version

__all__ = ["deploy_transformers_model"]


def deploy_transformers_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Version,
    model_dir: str | Path,
    task: str = "text-generation",
    labels: Sequence[str] | None = None,
    num_replicas: int | None = None,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
    environment: EnvironmentArg = "capture",
    device: str = "auto",
) -> None:
    """Deploy the model in `model_dir` as `name:version` (input type `strings`) for
    `task`; each worker loads it from the artifact on `device`, downloading nothing."""
    artifact = transformers_artifact(
        model_dir, task=task, device=device, environment=environment,
        pkgs_to_install=pkgs_to_install or (),
    )  # fmt: skip
    clipper_conn.deploy_artifact(
        name, version, "strings", artifact, container_name="transformers", labels=labels,
        num_replicas=num_replicas, batch_size=batch_size, task=task,
    )  # fmt: skip
