"""The worker's serve loop: register, then answer batches until told to stop.

One thread does everything: it waits for the next message at most one heartbeat interval
and sends a heartbeat whenever an interval passed without one. A model stuck in a batch
therefore stops the heartbeats, and the server replaces the worker once they are overdue.
A model that runs out of memory under a memory limit fails its batch and the worker exits
with MEMORY_LIMIT_EXIT_CODE (the reconciler reports it and restarts the replica).
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from typing import Any

from clipper.artifacts.loader import PredictFunction
from clipper.artifacts.stepping import StepFunction
from clipper.core.types import InputType
from clipper.rpc.protocol import (
    UNSERIALISABLE_OUTPUT,
    Batch,
    BatchError,
    BatchReply,
    Heartbeat,
    Message,
    Refused,
    Register,
    Shutdown,
    Welcome,
    decode_inputs,
    encode_message,
    encode_reply_parts,
)
from clipper.worker.batch import WrongNumberOfOutputs, checked_outputs, wire_outputs
from clipper.worker.connection import RpcConnection
from clipper.worker.continuous import ContinuousRun
from clipper.worker.rlimits import MEMORY_LIMIT_EXCEEDED, MEMORY_LIMIT_EXIT_CODE
from clipper.worker.streaming import StreamRun, is_streaming

__all__ = ["ReplicaSpec", "serve"]

log = logging.getLogger("clipper.worker")


class ReplicaSpec:
    """Who this worker is."""

    def __init__(
        self,
        model: str,
        version: str,
        replica: int,
        input_type: InputType,
        secret: str = "",
        memory_limited: bool = False,
    ) -> None:
        self.model = model
        self.version = version
        self.replica = replica
        self.input_type = input_type
        self.secret = secret
        self.memory_limited = memory_limited


def _run_batch(predict: PredictFunction, input_type: InputType, batch: Batch) -> Any:
    """Run the model on a batch's live inputs; return the reply or error message."""
    local_deadline = time.monotonic() + batch.budget_us / 1e6
    inputs = decode_inputs(input_type, batch.lens, memoryview(batch.body))
    # Inputs whose deadline passed before compute are skipped, not computed.
    if time.monotonic() >= local_deadline:
        return BatchReply(batch.id, [], expired=list(range(len(inputs))))
    try:
        outputs = predict(inputs)
        outputs = list(outputs) if outputs is not None else None
    except MemoryError as exc:
        log.error("batch %d: model raised MemoryError\n%s", batch.id, traceback.format_exc())
        return BatchError(batch.id, "MemoryError", f"{MEMORY_LIMIT_EXCEEDED}: {exc}")
    except Exception as exc:
        log.error("batch %d: model raised\n%s", batch.id, traceback.format_exc())
        return BatchError(batch.id, type(exc).__name__, str(exc), traceback.format_exc())
    try:
        outputs = checked_outputs(outputs, len(inputs))
    except WrongNumberOfOutputs as exc:
        log.error("batch %d: %s", batch.id, exc)
        return BatchError(batch.id, "WrongNumberOfOutputs", str(exc))
    try:
        return BatchReply(batch.id, wire_outputs(outputs))
    except Exception as exc:
        log.error("batch %d: outputs are not serialisable\n%s", batch.id, traceback.format_exc())
        return BatchError(batch.id, UNSERIALISABLE_OUTPUT, f"{type(exc).__name__}: {exc}")


def _out_of_memory(reply: BatchReply | BatchError) -> bool:
    return isinstance(reply, BatchError) and reply.error_type == "MemoryError"


def _encode_reply(reply: BatchReply | BatchError) -> list[bytes | memoryview]:
    """Encode a reply in parts (array outputs uncopied); outputs the protocol cannot carry
    become a BatchError, so a model returning, say, a complex number fails its batch
    instead of killing the worker."""
    try:
        if isinstance(reply, BatchReply):
            return encode_reply_parts(reply)
        return [encode_message(reply)]
    except (TypeError, ValueError, OverflowError) as exc:
        log.error("batch %d: outputs cannot be sent: %s", reply.id, exc)
        error = BatchError(reply.id, type(exc).__name__, f"unserialisable output: {exc}")
        return [encode_message(error)]


def serve(
    connection: RpcConnection,
    spec: ReplicaSpec,
    predict: PredictFunction,
    heartbeat_interval_s: float,
    spin_s: float = 0.0,
) -> int:
    """Register and serve until the server says stop or goes away; return an exit code.

    Each read after a batch may spin for up to `spin_s` (see `WorkerConnection`). A step
    model's batches run in a `ContinuousRun`, a streaming model's in a `StreamRun`."""
    step_model = predict if isinstance(predict, StepFunction) else None
    continuous = step_model is not None and step_model.continuous
    connection.send(
        Register(
            spec.model,
            spec.version,
            spec.replica,
            spec.input_type.value,
            os.getpid(),
            secret=spec.secret,
            streams=step_model is not None or is_streaming(predict),
            max_sequences=step_model.max_sequences if step_model and continuous else 0,
        )
    )
    answer = connection.receive()
    if not isinstance(answer, Welcome):
        reason = answer.reason if isinstance(answer, Refused) else "connection closed"
        log.error("registration refused: %s", reason)
        return 3
    last_beat = time.monotonic()
    connection.spin_s = spin_s
    streaming = is_streaming(predict)
    deferred: list[Message] = []  # batches that came while a batch streamed
    while True:
        if deferred:
            message: Message | None = deferred.pop(0)
        else:
            message = connection.receive(timeout_s=heartbeat_interval_s)
        if isinstance(message, Batch) and step_model is not None:
            stepped = ContinuousRun(
                connection, step_model, spec.input_type, heartbeat_interval_s, deferred
            )
            stepped.run(message)
            if stepped.shutdown:
                return 0
        elif isinstance(message, Batch) and streaming:
            run = StreamRun(connection, heartbeat_interval_s, deferred)
            run.run(predict, spec.input_type, message)
            if run.shutdown:
                return 0
        elif isinstance(message, Batch):
            reply = _run_batch(predict, spec.input_type, message)
            connection.send_parts(_encode_reply(reply))
            if spec.memory_limited and _out_of_memory(reply):
                log.error("%s: exiting so the replica restarts", MEMORY_LIMIT_EXCEEDED)
                return MEMORY_LIMIT_EXIT_CODE
        elif message is None or isinstance(message, Shutdown):
            return 0
        now = time.monotonic()
        if now - last_beat >= heartbeat_interval_s:
            connection.send(Heartbeat())
            last_beat = now
