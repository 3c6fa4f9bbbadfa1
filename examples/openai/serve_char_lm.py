"""Train the tiny character LM for a few seconds, serve it as the app `story`, and talk to
it with the unmodified `openai` client (the OpenAI-compatible API, README.md). Run
against a started server (`clipper start --detach`):

    python examples/openai/serve_char_lm.py
    python examples/openai/serve_char_lm.py --prompt "the cat " --no-deploy
"""

from __future__ import annotations

import argparse

import openai

from clipper.artifacts.pytorch import pytorch_artifact
from clipper.client import AdminClient
from clipper.models.char_lm import stream, tiny_char_lm, train

TEXT = (
    "the cat sat on the mat. the dog sat on the log. the cat saw the dog. "
    "the dog saw the cat. the cat and the dog sat on the mat by the log. "
)


def deploy(admin: AdminClient, app: str = "story", version: int = 1, budget_s: float = 8.0) -> None:
    """Train a char LM on TEXT (100 steps, about 3 s; at most `budget_s`) and deploy it as
    `app` (a text-generation model that streams), linked to the app of the same name."""
    model = train(tiny_char_lm(0), TEXT, steps=100, budget_s=budget_s)
    if admin.get_application(app) is None:
        admin.add_app(app, "strings", "-", latency_slo_micros=5_000_000)
    admin.deploy_artifact(app, version, "strings", pytorch_artifact(model, stream),
                          task="text-generation")  # fmt: skip
    if app not in admin.get_linked_models(app):
        admin.add_model_links(app, [app])


def complete(base_url: str, prompt: str, app: str = "story", api_key: str = "-") -> str:
    """The greedy continuation of `prompt`, streamed and printed as it comes."""
    client = openai.OpenAI(base_url=base_url, api_key=api_key)
    pieces = []
    for chunk in client.completions.create(model=app, prompt=prompt, max_tokens=40,
                                           temperature=0, stop=["."], stream=True):  # fmt: skip
        pieces.append(chunk.choices[0].text)
        print(chunk.choices[0].text, end="", flush=True)
    print()
    return "".join(pieces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default="the dog ")
    parser.add_argument("--no-deploy", action="store_true", help="only query it")
    parser.add_argument("--query-port", type=int, default=1337)
    parser.add_argument("--admin-port", type=int, default=1338)
    args = parser.parse_args()
    if not args.no_deploy:
        with AdminClient(port=args.admin_port) as admin:
            deploy(admin)
    complete(f"http://127.0.0.1:{args.query_port}/v1", args.prompt)


if __name__ == "__main__":
    main()
