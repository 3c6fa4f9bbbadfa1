"""The admin API's OpenAPI 3.0 document, served at `GET /openapi.json` on the admin port.

Each `POST /admin/<operation>` is listed in `OPERATIONS` with its body fields; the
handlers in `clipper.admin.api` read exactly these fields (a unit test checks
that both name the same operations). Fields a handler treats as optional accept `null`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from clipper.core.generation import TASKS
from clipper.http.errors import error_schema

__all__ = ["OPERATIONS", "admin_openapi", "admin_openapi_json"]

Schema = dict[str, Any]

_STR: Schema = {"type": "string"}
_BOOL: Schema = {"type": "boolean", "nullable": True}
_INT: Schema = {"type": "integer", "nullable": True}
_NUM: Schema = {"type": "number", "nullable": True}
_OBJ: Schema = {"type": "object", "nullable": True}
_VERSION: Schema = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
_NAMES: Schema = {"oneOf": [{"type": "array", "items": _STR}, _STR]}
_OPT_NAMES: Schema = {"oneOf": [{"type": "array", "items": _STR}, _STR], "nullable": True}
_ANY: Schema = {}
_OBJECT_OR_NULL: Schema = {"type": "object", "nullable": True}
_ARRAY: Schema = {"type": "array"}
_MODEL = {"model_name": _STR, "model_version": _VERSION}
_MODEL_REQUIRED = ["model_name", "model_version"]


def _op(
    summary: str,
    fields: Schema | None = None,
    required: list[str] | None = None,
    answer: Schema | None = None,
    errors: tuple[int, ...] = (),
) -> Schema:
    return {
        "summary": summary,
        "fields": fields or {},
        "required": required or [],
        "answer": answer if answer is not None else {"type": "object"},
        "errors": errors,
    }


_OVERLOAD: Schema = {"type": "string", "enum": ["default", "reject"]}
_PRIORITY: Schema = {"type": "integer", "minimum": 0, "maximum": 9}
_PAYLOAD_LOG: Schema = {
    "type": "object",
    "nullable": True,
    "properties": {
        "sink": {"type": "string"},
        "sample": {"type": "number", "minimum": 0, "maximum": 1},
        "fields": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}

OPERATIONS: dict[str, Schema] = {
    "add_app": _op(
        "Register an application.",
        {
            "name": _STR, "input_type": _STR,
            "default_output": {"oneOf": [_STR, {"type": "number"}]},
            "latency_slo_micros": {"type": "integer"}, "policy": {**_STR, "nullable": True},
            "policy_params": _OBJ, "require_query_token": _BOOL, "show_model_errors": _BOOL,
            "overload": _OVERLOAD, "payload_log": _PAYLOAD_LOG, "priority": _PRIORITY,
        },
        ["name", "input_type", "default_output", "latency_slo_micros"],
        errors=(409,),
    ),
    "update_app": _op(
        "Change an app's latency SLO, default output and priority (those left out stay).",
        {
            "name": _STR, "latency_slo_micros": _INT, "priority": _PRIORITY,
            "default_output": {"oneOf": [_STR, {"type": "number"}], "nullable": True},
        },
        ["name"], _OBJECT_OR_NULL,
    ),
    "delete_app": _op("Remove an application (its models stay).", {"name": _STR}, ["name"]),
    "set_app_policy": _op(
        "Set an app's selection policy and its parameters.",
        {"app_name": _STR, "policy": _STR, "policy_params": _OBJ}, ["app_name", "policy"],
    ),
    "set_app_pipeline": _op(
        "Make an app a pipeline of models ([] makes it plain).",
        {"app_name": _STR, "model_names": _OPT_NAMES}, ["app_name"], errors=(409,),
    ),
    "set_app_model_errors": _op(
        "Let an app's clients read its models' exception text in default answers (or not).",
        {"app_name": _STR, "show": {"type": "boolean"}}, ["app_name", "show"],
    ),
    "set_app_overload": _op(
        "What an app's queries refused by admission control get: its default output "
        "(default) or 429 / RESOURCE_EXHAUSTED (reject).",
        {"app_name": _STR, "overload": _OVERLOAD}, ["app_name", "overload"],
    ),
    "set_payload_log": _op(
        "Where a record of each sampled query of an app (and its feedback) goes: "
        "{sink: jsonl | cloudevents:URL | redis://HOST:PORT/STREAM, sample, fields}; null: off.",
        {"name": _STR, "payload_log": _PAYLOAD_LOG}, ["name"],
        {"type": "object", "properties": {"name": _STR, "payload_log": _PAYLOAD_LOG}},
    ),
    "set_model_payload_log": _op(
        "Where a record of each query a model version (default: current) answered goes, "
        "whichever app asked (and queries of the version itself); null: off.",
        {"model_name": _STR, "model_version": {**_VERSION, "nullable": True},
         "payload_log": _PAYLOAD_LOG},
        ["model_name"], _OBJECT_OR_NULL,
    ),
    "set_app_query_auth": _op(
        "Make an app's queries require a query token scoped to it (or not).",
        {"app_name": _STR, "require_query_token": {"type": "boolean"}},
        ["app_name", "require_query_token"],
    ),
    "add_model_links": _op(
        "Link models to an application.", {"app_name": _STR, "model_names": _NAMES},
        ["app_name", "model_names"], errors=(409,),
    ),
    "delete_model_links": _op(
        "Unlink models from an application.", {"app_name": _STR, "model_names": _NAMES},
        ["app_name", "model_names"],
    ),
    "add_model": _op(
        "Register a model version, start its replicas, make it current once ready.",
        {
            **_MODEL, "input_type": _STR, "labels": _OPT_NAMES,
            "container_name": {**_STR, "nullable": True},
            "model_data_path": {**_STR, "nullable": True}, "batch_size": _INT,
            "batch_wait_timeout_micros": _INT, "max_in_flight": _INT, "num_replicas": _INT,
            "max_queued": _INT, "containerless": _BOOL, "signature": _ANY,
            "task": {**_STR, "nullable": True, "enum": [*TASKS, None]},
            "output_type": {**_STR, "nullable": True}, "resources": _OBJ, "ready_timeout_s": _NUM,
            "autoscaling": _OBJ, "rollout": _ANY, "payload_log": _PAYLOAD_LOG,
        },
        [*_MODEL_REQUIRED, "input_type"], _OBJECT_OR_NULL, (409, 500),
    ),
    "start_rollout": _op(
        "Roll a registered version out against the current one, step by step, judged on "
        "the live traffic (plan: README.md#canary-rollouts; absent: the defaults).",
        {**_MODEL, "plan": _OBJ, "ready_timeout_s": _NUM}, _MODEL_REQUIRED, _OBJECT_OR_NULL,
        (409, 500),
    ),
    "get_rollout": _op(
        "A model's running rollout (else its last one): step, share, each check's figures "
        "against its threshold, time left; null if it never had one (also GET "
        "/admin/get_rollout?model_name=...).",
        {"model_name": _STR}, ["model_name"], _OBJECT_OR_NULL,
    ),
    "promote_rollout": _op(
        "Skip the rest of a model's running rollout: its new version becomes current now.",
        {"model_name": _STR}, ["model_name"], _OBJECT_OR_NULL, (409,),
    ),
    "abort_rollout": _op(
        "Stop a model's running rollout: all traffic goes back to the current version.",
        {"model_name": _STR}, ["model_name"], _OBJECT_OR_NULL, (409,),
    ),
    "pause_rollout": _op(
        "Hold a model's running rollout: its traffic split stays, no step advances or is "
        "judged, its step's time left is kept (across a restart too).",
        {"model_name": _STR}, ["model_name"], _OBJECT_OR_NULL, (409,),
    ),
    "resume_rollout": _op(
        "Go on with a paused rollout, with fresh windows and the time its step had left.",
        {"model_name": _STR}, ["model_name"], _OBJECT_OR_NULL, (409,),
    ),
    "set_model_version": _op(
        "Make a registered version current once its replicas are ready.",
        {**_MODEL, "ready_timeout_s": _NUM}, _MODEL_REQUIRED, _OBJECT_OR_NULL, (409, 500),
    ),
    "delete_versioned_model": _op(
        "Stop a version's replicas and unregister it.", _MODEL, _MODEL_REQUIRED, errors=(409,)
    ),
    "get_all_applications": _op("App names, or info objects.", {"verbose": _BOOL}, [], _ARRAY),
    "get_application": _op("An app's info, or null.", {"name": _STR}, ["name"], _OBJECT_OR_NULL),
    "get_linked_models": _op(
        "Names of an app's linked models.", {"app_name": _STR}, ["app_name"],
        {"type": "array", "items": _STR},
    ),
    "get_all_models": _op("`name:version` strings, or info objects.", {"verbose": _BOOL},
                          [], _ARRAY),
    "get_model": _op("A model version's info, or null.", _MODEL, _MODEL_REQUIRED,
                     _OBJECT_OR_NULL),
    "get_all_containers": _op("Replica names, or info objects.", {"verbose": _BOOL}, [], _ARRAY),
    "get_container": _op(
        "A replica's info, or null.", {**_MODEL, "replica_id": {"type": "integer"}},
        [*_MODEL_REQUIRED, "replica_id"], _OBJECT_OR_NULL,
    ),
    "set_num_replicas": _op(
        "Set a version's replica target (default: the current version).",
        {"model_name": _STR, "num_replicas": {"type": "integer"},
         "model_version": {**_VERSION, "nullable": True}},
        ["model_name", "num_replicas"], _OBJECT_OR_NULL, (409,),
    ),
    "set_autoscaling": _op(
        "Autoscale a version (default: the current version) within its settings, or stop "
        "(autoscaling null).",
        {"model_name": _STR, "model_version": {**_VERSION, "nullable": True},
         "autoscaling": _OBJ},
        ["model_name", "autoscaling"], _OBJECT_OR_NULL, (409,),
    ),
    "get_num_replicas": _op(
        "A version's replica target.",
        {"model_name": _STR, "model_version": {**_VERSION, "nullable": True}},
        ["model_name"], {"type": "integer"},
    ),
    "get_current_model_version": _op(
        "The current version of a model.", {"model_name": _STR}, ["model_name"], _STR
    ),
    "wait_model_ready": _op(
        "Wait until every target replica is connected.", {**_MODEL, "timeout_s": _NUM},
        _MODEL_REQUIRED,
        {"type": "object", "properties": {"ready_replicas": {"type": "integer"}}},
    ),
    "set_batch_policy": _op(
        "Set a version's batching (default: the current version).",
        {"model_name": _STR, "model_version": {**_VERSION, "nullable": True},
         "batch_size": _INT, "batch_wait_timeout_micros": _INT, "max_in_flight": _INT},
        ["model_name"],
    ),
    "set_cache": _op(
        "Turn the prediction cache of an app or a model on or off.",
        {"app_name": {**_STR, "nullable": True}, "model_name": {**_STR, "nullable": True},
         "enabled": {"type": "boolean"}},
        ["enabled"],
    ),
    "get_logs": _op(
        "A page of the server's and every replica's log (or of the one named): each from "
        "offset, max_bytes in all; ask again from each log's next_offset up to its size.",
        {"name": {**_STR, "nullable": True}, "offset": _INT, "max_bytes": _INT},
    ),
    "prepare_environment": _op(
        "Build (or find) an uploaded artifact's environment.", _MODEL, _MODEL_REQUIRED,
        errors=(409, 500),
    ),
    "get_environments": _op("Every model environment built or building.", answer=_ARRAY),
    "get_events": _op("Events after `since`, oldest first.",
                      {"since": _INT, "limit": _INT}, [], _ARRAY),
    "create_query_token": _op(
        "Create a query token scoped to apps; the token is shown only in this answer.",
        {"apps": _NAMES, "label": {**_STR, "nullable": True}}, ["apps"],
        {"type": "object", "required": ["id", "token", "apps"],
         "properties": {"id": {"type": "integer"}, "token": _STR,
                        "apps": {"type": "array", "items": _STR}}},
    ),
    "get_query_tokens": _op("Every query token's id, apps and label (never the token).",
                            answer=_ARRAY),
    "revoke_query_token": _op("Delete a query token.", {"id": {"type": "integer"}}, ["id"]),
}  # fmt: skip

_ERROR_REASONS = {
    400: "Malformed request (bad JSON, a missing field, a wrong type or value).",
    401: "Missing or wrong admin token.",
    404: "Unknown application, model, version or replica.",
    409: "Already exists, or not allowed in the current state.",
    413: "Request body over the limit.",
    500: "The deploy failed (replicas or environment).",
}


def _error_response(status: int) -> Schema:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}}
    return {"description": _ERROR_REASONS[status], "content": content}


def _json_response(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(answer: Schema, errors: tuple[int, ...]) -> Schema:
    responses: Schema = {"200": _json_response(answer)}
    for status in sorted({400, 401, 404, 413, *errors}):
        responses[str(status)] = _error_response(status)
    return responses


def _operation_path(name: str, spec: Schema) -> Schema:
    body_schema: Schema = {"type": "object", "properties": spec["fields"]}
    if spec["required"]:
        body_schema["required"] = spec["required"]
    return {
        "post": {
            "operationId": name,
            "summary": spec["summary"],
            "requestBody": {
                "required": bool(spec["required"]),
                "content": {"application/json": {"schema": body_schema}},
            },
            "responses": _responses(spec["answer"], spec["errors"]),
        }
    }


def _get_and_post(name: str, summary: str, responses: Schema) -> Schema:
    """A read-only path answered to GET and to POST (with any body)."""
    return {
        "get": {"operationId": name, "summary": summary, "responses": responses},
        "post": {"operationId": f"{name}_post", "summary": summary, "responses": responses},
    }


def _fixed_paths() -> Schema:
    plain = {"description": "PONG", "content": {"text/plain": {"schema": _STR}}}
    object_answer = {"200": _json_response({"type": "object"}), "401": _error_response(401)}
    # The server reads the bytes whatever the content type (the client sends x-tar or gzip).
    artifact_body = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    name_param = {"in": "path", "required": True, "schema": _STR}
    return {
        "/admin/ping": {"get": {"operationId": "ping", "summary": "Liveness (no token needed).",
                                "security": [], "responses": {"200": plain}}},
        "/admin/metrics": _get_and_post("metrics", "Metrics as JSON.", object_answer),
        "/admin/status": _get_and_post(
            "status", "Cluster name, pid, addresses, counts.", object_answer
        ),
        "/admin/metrics_summary": _get_and_post(
            "metrics_summary", "Counters and histograms per app and model (the dashboard's).",
            object_answer,
        ),
        "/admin/metrics_history": _get_and_post(
            "metrics_history",
            "The metrics summaries of the last minutes, oldest first (the dashboard's charts).",
            object_answer,
        ),
        "/admin/recent_errors": _get_and_post(
            "recent_errors", "Failed replicas and the newest log warnings and errors.",
            object_answer,
        ),
        "/admin/shutdown": {
            "post": {"operationId": "shutdown", "summary": "Stop the workers and the server.",
                     "responses": object_answer},
        },
        "/admin/restart_frontends": {
            "post": {"operationId": "restart_frontends",
                     "summary": "Replace the query frontends one at a time, no query failing "
                                "(several frontends only); the frontends after it.",
                     # 400: one frontend (nothing to restart)
                     "responses": {**object_answer, "400": _error_response(400)}},
        },
        "/admin/artifacts/{model_name}/{model_version}": {
            "put": {
                "operationId": "upload_artifact",
                "summary": "Upload a model artifact (a tar archive, gzipped or not).",
                "parameters": [{**name_param, "name": "model_name"},
                               {**name_param, "name": "model_version"}],
                "requestBody": {"required": True, "content": artifact_body},
                "responses": _responses(
                    {"type": "object", "properties": {"model_data_path": _STR}}, (409,)
                ),
            }
        },
        "/openapi.json": {
            "get": {"operationId": "openapi", "summary": "This document (no token needed).",
                    "security": [], "responses": {"200": _json_response({"type": "object"})}},
        },
    }  # fmt: skip


def _get_rollout_by_query() -> Schema:
    """`GET /admin/get_rollout?model_name=...`, the POST operation's twin."""
    spec = OPERATIONS["get_rollout"]
    return {
        "operationId": "get_rollout_get",
        "summary": spec["summary"],
        "parameters": [{"in": "query", "name": "model_name", "required": True, "schema": _STR}],
        "responses": _responses(spec["answer"], spec["errors"]),
    }


@cache
def admin_openapi() -> Schema:
    """The document as a dict."""
    paths = _fixed_paths()
    for name, spec in OPERATIONS.items():
        paths[f"/admin/{name}"] = _operation_path(name, spec)
    paths["/admin/get_rollout"]["get"] = _get_rollout_by_query()
    error = error_schema()
    return {
        "openapi": "3.0.3",
        "info": {"title": "Clipper admin API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {"error": error},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


@cache
def admin_openapi_json() -> bytes:
    """The document as JSON bytes."""
    return orjson.dumps(admin_openapi())
