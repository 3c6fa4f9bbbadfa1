"""Step models: generative models the worker runs with continuous (iteration-level) batching.

A step model is a class (or an instance) with two methods:

    start(self, input) -> state
        begin one sequence (a prompt's prefill, say); `state` is the model's own object
    step(self, states: list[state]) -> list[tuple[piece | None, bool]]
        advance EVERY given sequence by one step in one (batched) call; per state, in
        order: the piece it produced this step (None: none) and whether it is now done

and optionally:

    max_sequences: int     the most sequences one step may hold (a KV cache's size, say)
    continuous: bool       False runs it request-level (a batch runs to its end before the
                           next starts), for comparison; True (the default) batches
                           continuously
    finish(self, state)    told when a sequence leaves the batch (done, cancelled, or the
                           step failed), to free what it holds

The worker (clipper.worker.continuous) keeps a running batch of sequences: between two steps
it starts the sequences of the queries that arrived and drops those done or cancelled, so a
new query waits for at most the step in progress. The server keeps the batch's limit (see
clipper.dataplane.model_serving): it grows while steps stay fast against the SLO and shrinks
when they get slow, as the AIMD batch size does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clipper.rpc.protocol import join_pieces

__all__ = ["DEFAULT_MAX_SEQUENCES", "StepFunction", "is_step_model"]

DEFAULT_MAX_SEQUENCES = 512
"""The cap of a step model that names none (the adaptive batch size's cap)."""


def is_step_model(model: Any) -> bool:
    """Whether a model class or instance has the step interface (`start` and `step`)."""
    return callable(getattr(model, "start", None)) and callable(getattr(model, "step", None))


class StepFunction:
    """A loaded step model. `stepping` tells it apart from a batch function; called as one
    (`self(inputs)`), it runs the inputs' sequences together to their end."""

    stepping = True

    def __init__(self, instance: Any) -> None:
        self.instance = instance
        self.start: Callable[[Any], Any] = instance.start
        self.step: Callable[[list[Any]], Any] = instance.step
        finish = getattr(instance, "finish", None)
        self.finish: Callable[[Any], None] | None = finish if callable(finish) else None
        cap = getattr(instance, "max_sequences", DEFAULT_MAX_SEQUENCES)
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise ValueError(f"max_sequences must be a positive int, got {cap!r}")
        self.max_sequences = cap
        self.continuous = bool(getattr(instance, "continuous", True))

    def __call__(self, inputs: list[Any]) -> list[Any]:
        """Every input's pieces joined (the model's sequences stepped together)."""
        states = [self.start(value) for value in inputs]
        pieces: list[list[Any]] = [[] for _ in inputs]
        live = list(range(len(inputs)))
        while live:
            results = self.step([states[index] for index in live])
            still = []
            for index, (piece, done) in zip(live, results, strict=True):
                if piece is not None:
                    pieces[index].append(piece)
                if done:
                    if self.finish is not None:
                        self.finish(states[index])
                else:
                    still.append(index)
            live = still
        return [join_pieces(each) for each in pieces]
