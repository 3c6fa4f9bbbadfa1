"""What every loader shares: the predict-function type, load errors, input stacking."""

from __future__ import annotations

import asyncio
import inspect
import platform
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

from clipper.core.exceptions import ModelLoadError

__all__ = [
    "Loader",
    "ModelLoadError",
    "PredictFunction",
    "StreamFunction",
    "artifact_file",
    "as_batch_function",
    "check_pickle_environment",
    "output_rows",
    "read_pickle",
    "stack_inputs",
]

PredictFunction = Callable[[list[Any]], Any]
"""A loaded model: a list of inputs in, as many outputs out."""

Loader = Callable[[Path, dict[str, Any]], PredictFunction]
"""Loads one artifact kind from its directory and metadata."""


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def check_pickle_environment(metadata: dict[str, Any]) -> None:
    """Refuse a cloudpickle payload made on another Python minor or cloudpickle major
    version, saying what differs (such pickles fail or misbehave when loaded)."""
    wanted_python = str(metadata.get("python_version", ""))
    here_python = platform.python_version()
    if wanted_python and _major_minor(wanted_python) != _major_minor(here_python):
        raise ModelLoadError(
            f"closure was serialised on Python {wanted_python} but this worker runs "
            f"Python {here_python}; cloudpickle closures only load on the same minor version"
        )
    wanted_pickle = str(metadata.get("cloudpickle_version", ""))
    here_pickle = str(cloudpickle.__version__)
    if wanted_pickle and wanted_pickle.split(".")[0] != here_pickle.split(".")[0]:
        raise ModelLoadError(
            f"closure was serialised with cloudpickle {wanted_pickle} but this worker has "
            f"cloudpickle {here_pickle}"
        )


def artifact_file(path: Path, metadata: dict[str, Any], key: str, default: str) -> Path:
    """The file an artifact's metadata names under `key`; ModelLoadError if it is missing."""
    file = path / str(metadata.get(key, default))
    if not file.exists():
        raise ModelLoadError(f"the artifact has no {file.name} (expected at {file})")
    return file


def read_pickle(file: Path, metadata: dict[str, Any]) -> Any:
    """Unpickle a cloudpickle file after checking the versions it was made with."""
    check_pickle_environment(metadata)
    with open(file, "rb") as stream:
        return cloudpickle.load(stream)


def as_batch_function(func: Callable[..., Any]) -> PredictFunction:
    """`func` itself, or for an `async def` a function that runs it to completion on the
    worker's own event loop (one loop per worker, kept across batches); a generator or an
    async generator function is a streaming model (`StreamFunction`)."""
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        return StreamFunction(func)
    if not inspect.iscoroutinefunction(func):
        return func
    return _AsyncBatchFunction(func)


class _AsyncBatchFunction:
    """Runs an async batch function on an event loop of its own, closed with it."""

    def __init__(self, func: Callable[[list[Any]], Any]) -> None:
        self._func = func
        self._loop = asyncio.new_event_loop()

    def __call__(self, inputs: list[Any]) -> Any:
        return self._loop.run_until_complete(self._func(inputs))

    def __del__(self) -> None:
        if not self._loop.is_running():
            self._loop.close()


class StreamFunction:
    """A streaming model: called with a list of ONE input, it returns an iterator over
    that input's pieces (an async generator is stepped on an event loop of its own).

    The worker calls it once per input of a batch and steps the iterators in turn, one
    piece each (see clipper.worker.streaming); `streaming` tells it apart."""

    streaming = True

    def __init__(self, func: Callable[[list[Any]], Any]) -> None:
        self._func = func
        self._loop: asyncio.AbstractEventLoop | None = None
        if inspect.isasyncgenfunction(func):
            self._loop = asyncio.new_event_loop()

    def __call__(self, inputs: list[Any]) -> Iterator[Any]:
        """The pieces of `inputs[0]`, in order."""
        if self._loop is None:
            return iter(self._func(inputs))
        return _stepped(self._loop, self._func(inputs))

    def __del__(self) -> None:
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()


def _stepped(loop: asyncio.AbstractEventLoop, pieces: AsyncIterator[Any]) -> Iterator[Any]:
    """An async generator's pieces, each awaited on `loop`; closing this closes it."""
    try:
        while True:
            try:
                yield loop.run_until_complete(pieces.__anext__())
            except StopAsyncIteration:
                return
    finally:
        aclose = getattr(pieces, "aclose", None)
        if aclose is not None:
            loop.run_until_complete(aclose())


def stack_inputs(inputs: list[Any]) -> Any:
    """Numeric inputs as one 2-D array (one row per input); strings and bytes as a list."""
    if not inputs or not isinstance(inputs[0], np.ndarray):
        return inputs
    lengths = {len(row) for row in inputs}
    if len(lengths) > 1:
        raise ValueError(f"this model takes inputs of one length; got lengths {sorted(lengths)}")
    return np.stack(inputs)


def output_rows(result: Any) -> list[Any]:
    """One output per input from a framework's batch result (array rows or list items)."""
    if isinstance(result, np.ndarray):
        return list(result) if result.ndim else [result]
    return list(result)
