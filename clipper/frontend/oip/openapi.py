"""The OpenAPI 3.1 document of the query API (port 1337), served at `/openapi.json`.

It describes Clipper's own routes and the Open Inference Protocol's, as this server
answers them; the integration tests validate every response they get against it.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from clipper.http.errors import error_schema

__all__ = ["openapi_document", "openapi_json"]

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF + name}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _response(description: str, schema: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = _json_content(_ref(schema))
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _response(_ERROR_TEXT[status], "error") for status in statuses}


_ERROR_TEXT = {
    400: "Bad request (malformed body, wrong datatype or shape)",
    404: "Unknown model, version or application",
    413: "Body over CLIPPER_MAX_BODY_BYTES",
    500: "The model failed",
    503: "No replica can answer",
    504: "The deadline passed before the model answered",
}

_NAME = {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "model_version", "in": "path", "required": True, "schema": {"type": "string"}}
_APP = {"name": "app", "in": "path", "required": True, "schema": {"type": "string"}}
_TIMEOUT = {
    "name": "Clipper-Timeout-Us",
    "in": "header",
    "required": False,
    "schema": {"type": "integer", "minimum": 1},
    "description": "A shorter budget for this query, in microseconds.",
}


def _model_paths(prefix: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    binary = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    return {
        prefix: {
            "parameters": parameters,
            "get": {
                "summary": "Model metadata",
                "responses": {"200": _response("Metadata", "metadata_model_response"),
                              **_errors(404)},
            },
        },
        f"{prefix}/ready": {
            "parameters": parameters,
            "get": {
                "summary": "Model readiness",
                "responses": {"200": _response("Ready", "model_ready_response"),
                              "400": _response("Not ready", "model_ready_response"),
                              **_errors(404)},
            },
        },
        f"{prefix}/config": {
            "parameters": parameters,
            "get": {
                "summary": "Model configuration (Triton's shape)",
                "description": "model_transaction_policy.decoupled is true for a model "
                "that streams its answers.",
                "responses": {"200": _response("Configuration", "model_config_response"),
                              **_errors(404)},
            },
        },
        **{
            f"{prefix}/{operation}": {
                "parameters": [*parameters, _TIMEOUT],
                "post": {
                    "summary": summary,
                    "requestBody": {"required": True,
                                    "content": _json_content(_ref("generate_request"))},
                    "responses": {"200": answer, **_errors(400, 404, 413, 500, 503, 504)},
                },
            }
            for operation, summary, answer in (
                ("generate", "Generate (Triton's extension): the pieces joined",
                 _response("The answer", "generate_response")),
                ("generate_stream", "Generate (Triton's extension): one event per piece",
                 {"description": "Server-Sent Events, each `data:` a generate response, or "
                  "an error object (the last event)",
                  "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
            )
        },
        f"{prefix}/infer": {
            "parameters": [*parameters, _TIMEOUT],
            "post": {
                "summary": "Inference",
                "description": "JSON, or (binary tensor data extension) a JSON header of "
                "Inference-Header-Content-Length bytes followed by binary tensor data.",
                "requestBody": {"required": True, "content": {
                    **_json_content(_ref("inference_request")), **binary}},
                "responses": {
                    "200": {"description": "Outputs; binary outputs follow the JSON header",
                            "content": {**_json_content(_ref("inference_response")), **binary}},
                    **_errors(400, 404, 413, 500, 503, 504),
                },
            },
        },
    }  # fmt: skip


def _tensor(required: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    properties = {
        "name": {"type": "string"},
        "datatype": {"enum": _DATATYPES},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}},
        **(extra or {}),
    }
    return {"type": "object", "required": required, "properties": properties}


_DATATYPES = [
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip

_PARAMETERS = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}
_TENSOR_DATA = {
    "type": "array",
    "items": {"anyOf": [{"$ref": _REF + "tensor_data"}, {"type": ["number", "string", "boolean"]}]},
}
_BINARY_OUTPUT = {
    "type": "object",
    "required": ["binary_data_size"],
    "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
}

_SCHEMAS: dict[str, Any] = {
    "generate_request": {
        "type": "object",
        "description": "The input under the model's input name, or text_input.",
        "properties": {
            "text_input": {},
            "id": {"type": "string"},
            "parameters": {"type": "object", "properties": {
                "timeout": {"type": "integer", "minimum": 0},
                "stream_timeout_s": {"type": "number", "exclusiveMinimum": 0},
                "max_pieces": {"type": "integer", "minimum": 1},
            }},
        },
    },
    "generate_response": {
        "type": "object",
        "required": ["model_name", "model_version"],
        "description": "The output under text_output (for a text_input) or its name.",
        "properties": {"id": {"type": "string"}, "model_name": {"type": "string"},
                       "model_version": {"type": "string"}},
    },
    "model_config_response": {
        "type": "object",
        "required": ["name", "platform", "input", "output", "model_transaction_policy"],
        "properties": {
            "name": {"type": "string"},
            "platform": {"type": "string"},
            "input": {"type": "array", "items": {"type": "object"}},
            "output": {"type": "array", "items": {"type": "object"}},
            "model_transaction_policy": {
                "type": "object", "properties": {"decoupled": {"type": "boolean"}}},
        },
    },
    "error": error_schema("the message (the protocol's own key)"),
    "clipper_error": error_schema(),
    "parameters": _PARAMETERS,
    "tensor_data": _TENSOR_DATA,
    "metadata_server_response": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "metadata_tensor": _tensor(["name", "datatype", "shape"]),
    "metadata_model_response": {
        "type": "object",
        "required": ["name", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _ref("metadata_tensor")},
            "outputs": {"type": "array", "items": _ref("metadata_tensor")},
        },
    },
    "live_response": {"type": "object", "required": ["live"],
                      "properties": {"live": {"type": "boolean"}}},
    "ready_response": {"type": "object", "required": ["ready"],
                       "properties": {"ready": {"type": "boolean"}}},
    "model_ready_response": {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    },
    "request_input": _tensor(["name", "shape", "datatype"], {
        "parameters": _ref("parameters"), "data": _ref("tensor_data")}),
    "request_output": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "parameters": _ref("parameters")},
    },
    "inference_request": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": _ref("parameters"),
            "inputs": {"type": "array", "items": _ref("request_input")},
            "outputs": {"type": "array", "items": _ref("request_output")},
        },
    },
    "response_output": {
        **_tensor(["name", "shape", "datatype"], {
            "parameters": _ref("parameters"), "data": _ref("tensor_data")}),
        "oneOf": [
            {"required": ["data"]},
            {"required": ["parameters"], "properties": {"parameters": _BINARY_OUTPUT}},
        ],
    },
    "inference_response": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": _ref("parameters"),
            "outputs": {"type": "array", "items": _ref("response_output")},
        },
    },
    "prediction": {
        "type": "object",
        "required": ["query_id", "output", "default"],
        "properties": {
            "query_id": {"type": "integer"},
            "output": {},
            "default": {"type": "boolean"},
            "default_explanation": {"type": "string"},
        },
    },
    "predict_request": {
        "type": "object",
        "properties": {
            "input": {},
            "input_batch": {"type": "array"},
            "version": {"type": ["string", "integer"]},
            "latency_slo_micros": {"type": "integer", "minimum": 1},
        },
    },
    "predict_response": {
        "oneOf": [
            _ref("prediction"),
            {"type": "object", "required": ["batch_predictions"],
             "properties": {"batch_predictions": {"type": "array", "items": _ref("prediction")}}},
        ],
    },
    "status": {"type": "object", "required": ["status"],
               "properties": {"status": {"type": "string"}}},
}  # fmt: skip


def _clipper_paths() -> dict[str, Any]:
    clipper_errors = {
        str(status): {"description": text, "content": _json_content(_ref("clipper_error"))}
        for status, text in ((400, "Json error or query processing error"),
                             (404, "Unknown application"), (413, "Body too large"))
    }  # fmt: skip
    return {
        "/{app}/predict": {"post": {
            "summary": "Clipper query",
            "parameters": [_APP, _TIMEOUT],
            "requestBody": {"required": True, "content": _json_content(_ref("predict_request"))},
            "responses": {"200": _response("Predictions", "predict_response"), **clipper_errors},
        }},
        "/{app}/ready": {"get": {
            "summary": "Application readiness",
            "parameters": [_APP],
            "responses": {"200": _response("Ready", "status"),
                          "503": _response("Not ready", "status"),
                          "404": clipper_errors["404"]},
        }},
        "/healthz": {"get": {"summary": "Liveness",
                             "responses": {"200": _response("Live", "status")}}},
        "/readyz": {"get": {"summary": "Readiness of every app",
                            "responses": {"200": _response("Ready", "status"),
                                          "503": _response("Not ready", "status")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
            "description": "Text exposition",
            "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }  # fmt: skip


def _v2_paths() -> dict[str, Any]:
    return {
        "/v2": {"get": {
            "summary": "Server metadata",
            "responses": {"200": _response("Metadata", "metadata_server_response")},
        }},
        "/v2/health/live": {"get": {
            "summary": "Server liveness",
            "responses": {"200": _response("Live", "live_response")},
        }},
        "/v2/health/ready": {"get": {
            "summary": "Server readiness: every application's models have a replica",
            "responses": {"200": _response("Ready", "ready_response"),
                          "400": _response("Not ready", "ready_response")},
        }},
        **_model_paths("/v2/models/{model_name}", [_NAME]),
        **_model_paths("/v2/models/{model_name}/versions/{model_version}", [_NAME, _VERSION]),
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {
            "description": "OpenAPI 3.1", "content": _json_content({"type": "object"})}}}},
    }  # fmt: skip


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document, as a dict."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Clipper query API",
            "version": "2",
            "description": "Clipper's query routes and the Open Inference Protocol (KServe "
            "V2) with the binary tensor data extension, and Triton's generate and model "
            "configuration extensions. A V2 model name is a model, or an "
            "application (then its linked model, through the app). A V2 path asked with "
            "another method answers 405 with the error object.",
        },
        "paths": {**_clipper_paths(), **_v2_paths()},
        "components": {"schemas": _SCHEMAS},
    }


@functools.cache
def openapi_json() -> bytes:
    """The document, as JSON bytes."""
    return orjson.dumps(openapi_document())
