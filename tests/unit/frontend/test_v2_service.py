"""The transport-agnostic V2 core and its gRPC messages, without workers."""

from __future__ import annotations

import time

import numpy as np
import pytest

from clipper.core.exceptions import InvalidInput, ModelNotFound, ReplicaUnavailable, UnknownVersion
from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.core.types import InputType, ModelId
from clipper.dataplane.dataplane import DataPlane
from clipper.frontend.oip.datatypes import InferRequest, InferResponse, RequestedOutput, Tensor
from clipper.frontend.oip.grpc import grpc_predict_v2_pb2 as pb
from clipper.frontend.oip.grpc_server import decode_infer_request, encode_infer_response
from clipper.frontend.oip.service import InferenceService


def make_service() -> InferenceService:
    versions = {
        ModelId("sum", v): ModelVersionRecord("sum", v, InputType.DOUBLES) for v in ("1", "2")
    }
    snapshot = RegistrySnapshot(
        apps={"front": AppRecord("front", InputType.DOUBLES, "-1", 50_000),
              "empty": AppRecord("empty", InputType.DOUBLES, "-1", 50_000)},
        versions=versions,
        current_versions={"sum": "2"},
        links={"front": ("sum",), "empty": ()},
    )  # fmt: skip
    dataplane = DataPlane()
    dataplane.apply(snapshot)
    return InferenceService(dataplane, lambda: snapshot)


def test_a_model_resolves_to_its_current_version() -> None:
    target = make_service().resolve("sum", None)

    assert (target.record.version, target.versions, target.app) == ("2", ("1", "2"), None)


def test_an_app_resolves_to_its_linked_model() -> None:
    target = make_service().resolve("front", "1")

    assert (target.name, target.record.model_id, target.app) == (
        "front",
        ModelId("sum", "1"),
        "front",
    )


@pytest.mark.parametrize(
    ("name", "version", "error"),
    [("nope", None, ModelNotFound), ("empty", None, ModelNotFound), ("sum", "9", UnknownVersion)],
)
def test_unknown_names_and_versions_raise(name: str, version: str | None, error: type) -> None:
    with pytest.raises(error):
        make_service().resolve(name, version)


def test_model_metadata_reports_the_default_signature() -> None:
    metadata = make_service().model_metadata("sum", None)

    assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, -1]}]
    assert metadata["versions"] == ["1", "2"]


def test_a_model_without_replicas_is_not_ready() -> None:
    assert not make_service().model_ready("sum", None)


async def test_infer_without_replicas_is_unavailable_at_the_deadline() -> None:
    rows = np.ones((2, 3))
    request = InferRequest([Tensor("input", "FP64", (2, 3), rows)], parameters={"timeout": 2000})

    with pytest.raises(ReplicaUnavailable):
        await make_service().infer("sum", None, request)


@pytest.mark.parametrize(
    ("parameters", "transport_budget_s"), [({"timeout": 3_000_000}, None), ({}, 3.0)]
)
async def test_a_budget_longer_than_the_slo_is_cut_to_the_slo(
    parameters: dict[str, int], transport_budget_s: float | None
) -> None:
    request = InferRequest(
        [Tensor("input", "FP64", (1, 3), np.ones((1, 3)))], parameters=parameters
    )
    started = time.monotonic()

    with pytest.raises(ReplicaUnavailable):  # no replica answers by the deadline
        await make_service().infer("front", None, request, transport_budget_s)

    assert time.monotonic() - started < 1.0  # the app's 50 ms SLO, not the 3 s asked


async def test_unknown_requested_output_is_invalid_input() -> None:
    request = InferRequest(
        [Tensor("input", "FP64", (1, 1), np.ones((1, 1)))], outputs=[RequestedOutput("nope")]
    )

    with pytest.raises(InvalidInput, match="unknown outputs"):
        await make_service().infer("sum", None, request)


def test_grpc_raw_contents_decode_to_arrays() -> None:
    message = pb.ModelInferRequest(model_name="sum", id="7")
    message.inputs.add(name="input", datatype="FP32", shape=[2, 2])
    message.inputs.add(name="t", datatype="BYTES", shape=[1])
    message.raw_input_contents.extend(
        [np.arange(4, dtype=np.float32).tobytes(), b"\x02\x00\x00\x00hi"]
    )
    message.parameters["timeout"].int64_param = 5

    request = decode_infer_request(message)

    assert request.inputs[0].data.tolist() == [[0, 1], [2, 3]]  # type: ignore[union-attr]
    assert request.inputs[1].data == [b"hi"]
    assert (request.id, request.timeout_us, request.outputs) == ("7", 5, None)


def test_grpc_typed_contents_decode_to_arrays() -> None:
    message = pb.ModelInferRequest(model_name="sum")
    tensor = message.inputs.add(name="input", datatype="INT64", shape=[3])
    tensor.contents.int64_contents.extend([1, -2, 3])

    data = decode_infer_request(message).inputs[0].data

    assert isinstance(data, np.ndarray)
    assert data.dtype == np.int64
    assert data.tolist() == [1, -2, 3]


def test_grpc_fp16_must_be_raw() -> None:
    message = pb.ModelInferRequest(model_name="sum")
    message.inputs.add(name="input", datatype="FP16", shape=[1])

    with pytest.raises(InvalidInput, match="must be raw"):
        decode_infer_request(message)


def test_grpc_response_is_raw() -> None:
    outputs = [Tensor("y", "FP64", (2,), np.array([1.0, 2.0])), Tensor("t", "BYTES", (1,), [b"a"])]

    message = encode_infer_response(InferResponse("m", "1", outputs, [False, False], id="q"))

    assert [(o.name, list(o.shape)) for o in message.outputs] == [("y", [2]), ("t", [1])]
    assert np.frombuffer(message.raw_output_contents[0]).tolist() == [1.0, 2.0]
    assert message.raw_output_contents[1] == b"\x01\x00\x00\x00a"
