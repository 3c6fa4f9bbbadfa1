"""The transport-agnostic core of the Open Inference Protocol, shared by REST and gRPC.

Names: every registered model is served as `<model name>` (its current version, or any
registered version by path); a name that is no model but an application resolves to the
app's linked model, and the query then goes through the app (its selection policy, SLO
and cache settings). Inference goes through `DataPlane`, so V2 queries share batching,
the cache, deadlines and metrics with Clipper's own. A query whose deadline passes or
whose model fails is an error here: the protocol has no default outputs.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from clipper.core.exceptions import (
    DeadlineExceeded,
    InvalidInput,
    ModelError,
    ModelNotFound,
    Overloaded,
    ReplicaCrashed,
    ReplicaUnavailable,
    UnknownVersion,
)
from clipper.core.records import ModelVersionRecord, RegistrySnapshot
from clipper.core.types import InputBuffer, ModelId
from clipper.dataplane.answers import observe_answers
from clipper.dataplane.dataplane import (
    NO_MODELS,
    SLO_MISSED,
    DataPlane,
    PieceStream,
    Prediction,
    StreamLimits,
    slo_missed,
)
from clipper.dataplane.model_serving import OVERLOADED
from clipper.dataplane.prediction import ModelRef
from clipper.frontend.oip.datatypes import InferRequest, InferResponse
from clipper.frontend.oip.rows import input_buffers, output_tensors
from clipper.frontend.oip.signature import Signature, signature_for
from clipper.metrics.server_metrics import ServerMetrics
from clipper.payloads.tap import PayloadTap, offer_to_versions

__all__ = ["EXTENSIONS", "PLATFORM", "SERVER_NAME", "InferenceService", "ModelTarget"]

SERVER_NAME = "clipper"
PLATFORM = "clipper"
EXTENSIONS = ("binary_tensor_data", "generate", "model_configuration")
DEFAULT_BUDGET_S = 0.1


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """What a V2 model name (and version) resolves to."""

    name: str
    record: ModelVersionRecord
    versions: tuple[str, ...]
    app: str | None = None

    @property
    def signature(self) -> Signature:
        """The model version's signature (declared, or the default)."""
        return signature_for(self.record.input_type, self.record.signature)


class InferenceService:
    """Health, metadata and inference over the dataplane and the registry snapshot."""

    def __init__(
        self,
        dataplane: DataPlane,
        snapshot: Callable[[], RegistrySnapshot],
        metrics: ServerMetrics | None = None,
        payloads: Mapping[str, PayloadTap] | None = None,
        version_payloads: Mapping[str, PayloadTap] | None = None,
    ) -> None:
        self._dataplane = dataplane
        self._snapshot = snapshot
        self._metrics = metrics
        # app -> its payload tap, kept current in place by clipper.payloads.PayloadLog
        self._payloads = payloads if payloads is not None else {}
        self._version_payloads = version_payloads if version_payloads is not None else {}
        self._indexed: RegistrySnapshot | None = None
        self._versions: dict[str, tuple[str, ...]] = {}
        try:
            self.version = importlib.metadata.version("clipper-serving")
        except importlib.metadata.PackageNotFoundError:
            self.version = "0"

    # -- health and metadata -------------------------------------------------------------

    def server_metadata(self) -> dict[str, Any]:
        """The protocol's `$metadata_server_response`."""
        return {"name": SERVER_NAME, "version": self.version, "extensions": list(EXTENSIONS)}

    def server_ready(self) -> bool:
        """Started, and every app's models have a ready replica."""
        return self._dataplane.all_ready()

    def model_ready(self, name: str, version: str | None) -> bool:
        """Whether the model version (or app) has a connected replica; raises if unknown."""
        target = self.resolve(name, version)
        serving = self._dataplane.serving(target.record.model_id)
        return serving is not None and serving.ready_replicas > 0

    def model_config(self, name: str, version: str | None) -> dict[str, Any]:
        """The model's configuration in the shape of Triton's (`GET .../config`): its name,
        platform, inputs and outputs, and `model_transaction_policy.decoupled` true for a
        streaming model (one whose replicas stream: they say so when they register)."""
        target = self.resolve(name, version)
        signature = target.signature
        return {
            "name": target.name,
            "platform": PLATFORM,
            "backend": PLATFORM,
            "version_policy": {"specific": {"versions": list(target.versions)}},
            "input": [_config_tensor(spec.to_dict()) for spec in signature.inputs],
            "output": [_config_tensor(spec.to_dict()) for spec in signature.outputs],
            "model_transaction_policy": {"decoupled": self.decoupled(target)},
        }

    def decoupled(self, target: ModelTarget) -> bool:
        """Whether the target's model version streams its answers."""
        serving = self._dataplane.serving(target.record.model_id)
        return serving is not None and serving.yields_pieces

    def model_metadata(self, name: str, version: str | None) -> dict[str, Any]:
        """The protocol's `$metadata_model_response`."""
        target = self.resolve(name, version)
        signature = target.signature
        return {
            "name": target.name,
            "versions": list(target.versions),
            "platform": PLATFORM,
            "inputs": [spec.to_dict() for spec in signature.inputs],
            "outputs": [spec.to_dict() for spec in signature.outputs],
        }

    # -- names -> model versions -----------------------------------------------------------

    def resolve(self, name: str, version: str | None) -> ModelTarget:
        """The model version a V2 name and version designate; ModelNotFound or
        UnknownVersion otherwise."""
        snapshot = self._snapshot()
        versions = self._model_versions(snapshot).get(name)
        if versions:
            return ModelTarget(name, self._version(snapshot, name, version), versions)
        app = snapshot.apps.get(name)
        if app is None:
            raise ModelNotFound(f"no model or application named '{name}'")
        linked = snapshot.links.get(name, ())
        if not linked:
            raise ModelNotFound(f"application '{name}' has no linked model")
        model = linked[0]
        record = self._version(snapshot, model, version)
        return ModelTarget(name, record, self._model_versions(snapshot).get(model, ()), name)

    def _model_versions(self, snapshot: RegistrySnapshot) -> dict[str, tuple[str, ...]]:
        if self._indexed is not snapshot:
            by_model: dict[str, list[str]] = defaultdict(list)
            for model_id in snapshot.versions:
                by_model[model_id.name].append(model_id.version)
            self._versions = {name: tuple(versions) for name, versions in by_model.items()}
            self._indexed = snapshot
        return self._versions

    def _version(
        self, snapshot: RegistrySnapshot, model: str, version: str | None
    ) -> ModelVersionRecord:
        chosen = version if version is not None else snapshot.current_versions.get(model)
        if chosen is None:
            raise ModelNotFound(f"model '{model}' has no current version yet")
        record = snapshot.versions.get(ModelId(model, chosen))
        if record is None:
            raise UnknownVersion(f"model '{model}' has no version '{chosen}'")
        return record

    # -- inference ---------------------------------------------------------------------------

    def open_stream(
        self,
        target: ModelTarget,
        buffer: InputBuffer,
        timeout_us: int | None,
        transport_budget_s: float | None,
        limits: StreamLimits,
    ) -> tuple[PieceStream, float]:
        """One input of a target as a stream of pieces (a model that does not stream gives
        none, and its answer) and its budget (seconds to the first piece); raises what
        `infer` would for a query answered at once."""
        budget_s = self._slo_s(target)
        for asked_s in (None if timeout_us is None else timeout_us / 1e6, transport_budget_s):
            if asked_s is not None:
                budget_s = min(budget_s, asked_s)
        deadline = time.monotonic() + budget_s
        record = target.record
        if target.app is not None:
            stream = self._dataplane.stream(target.app, buffer, None, deadline, limits)
        else:
            model = ModelRef(record.name)
            stream = self._dataplane.stream(model, buffer, record.version, deadline, limits)
        if stream is None:  # a routed app: its policy or pipeline cannot stream
            raise InvalidInput(f"application '{target.app}' takes a route and cannot stream")
        if isinstance(stream, Prediction):
            raise self.failure(stream, target, budget_s)
        return stream, budget_s

    def failure(self, prediction: Prediction, target: ModelTarget, budget_s: float) -> Exception:
        """The error of an input that got no answer (the protocol has no default output)."""
        slo_us = round(self._slo_s(target) * 1e6)
        return _failure(prediction.explanation or "no answer", round(budget_s * 1e6), slo_us)

    async def infer(
        self,
        name: str,
        version: str | None,
        request: InferRequest,
        transport_budget_s: float | None = None,
    ) -> InferResponse:
        """Run one inference request by its deadline: the SLO, or sooner when the request's
        `timeout` parameter or its transport (gRPC deadline, `Clipper-Timeout-Us`) asks."""
        started = time.monotonic()
        target = self.resolve(name, version)
        record = target.record
        signature = target.signature
        requested = self._requested(signature, request)
        buffers = input_buffers(signature, record.input_type, request.inputs)
        budget_s = self._budget_s(target, request, transport_budget_s)
        deadline = started + budget_s
        if target.app is not None:
            predictions = await self._dataplane.predict(
                target.app, buffers, version, deadline, priority=request.priority
            )
            latency_s = time.monotonic() - started
            if self._metrics is not None:
                observe_answers(self._metrics, target.app, predictions, latency_s)
            tap = self._payloads.get(target.app)
            if tap is not None:
                tap.offer(target.app, buffers, predictions, latency_s)
        else:
            model = ModelRef(record.name)
            predictions = await self._dataplane.predict(
                model, buffers, record.version, deadline, priority=request.priority
            )
            latency_s = time.monotonic() - started
        if self._version_payloads:
            offer_to_versions(self._version_payloads, target.app, buffers, predictions, latency_s)
        answers = _answers(predictions, round(budget_s * 1e6), round(self._slo_s(target) * 1e6))
        outputs = output_tensors(signature, record.input_type, answers)
        chosen = [tensor for tensor in outputs if tensor.name in requested]
        return InferResponse(
            model_name=target.name,
            model_version=record.version,
            outputs=chosen,
            binary=[_binary(requested[t.name], request.binary_output) for t in chosen],
            id=request.id,
        )

    @staticmethod
    def _requested(signature: Signature, request: InferRequest) -> dict[str, bool | None]:
        names = [spec.name for spec in signature.outputs]
        if request.outputs is None:
            return dict.fromkeys(names)
        unknown = [out.name for out in request.outputs if out.name not in names]
        if unknown:
            raise InvalidInput(f"unknown outputs {unknown}; the model has {names}")
        return {out.name: out.binary for out in request.outputs}

    def _budget_s(
        self, target: ModelTarget, request: InferRequest, transport_budget_s: float | None
    ) -> float:
        """The SLO (the app's, else the model's), or a shorter budget the request asks for:
        its `timeout` parameter or the transport's (never a longer one, as Clipper's own
        route does)."""
        budget_s = self._slo_s(target)
        if request.timeout_us is not None:
            budget_s = min(budget_s, request.timeout_us / 1e6)
        if transport_budget_s is not None:
            budget_s = min(budget_s, transport_budget_s)
        return budget_s

    def _slo_s(self, target: ModelTarget) -> float:
        if target.app is not None:
            app = self._dataplane.app(target.app)
            if app is not None:
                return app.latency_slo_us / 1e6
        serving = self._dataplane.serving(target.record.model_id)
        return serving.policy.slo_s if serving is not None else DEFAULT_BUDGET_S


def _config_tensor(spec: dict[str, Any]) -> dict[str, Any]:
    """A signature tensor as a config's (Triton's `TYPE_` datatypes, `dims`)."""
    datatype = "TYPE_STRING" if spec["datatype"] == "BYTES" else f"TYPE_{spec['datatype']}"
    return {"name": spec["name"], "data_type": datatype, "dims": spec["shape"]}


def _binary(requested: bool | None, default: bool) -> bool:
    return default if requested is None else requested


def _answers(predictions: list[Prediction], budget_us: int, slo_us: int) -> list[Any]:
    """The outputs, or the error of the first input that got none."""
    for prediction in predictions:
        if prediction.is_default:
            raise _failure(prediction.explanation or "no answer", budget_us, slo_us)
    return [prediction.output for prediction in predictions]


def _failure(explanation: str, budget_us: int, slo_us: int) -> Exception:
    if explanation == SLO_MISSED:
        return DeadlineExceeded(slo_missed(budget_us, slo_us))
    if explanation == NO_MODELS:
        return ReplicaUnavailable(explanation)
    if explanation.startswith("Model error"):
        return ModelError(explanation)
    if explanation.startswith("Replica crashed"):
        return ReplicaCrashed(explanation)
    if explanation.startswith(OVERLOADED):  # refused by admission control
        return Overloaded(explanation)
    return ReplicaUnavailable(explanation)
