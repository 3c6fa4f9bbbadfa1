"""The admin API (port 1338): Clipper's `/admin/...` endpoints, answered in JSON."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clipper.admin import query_tokens, rollout_handlers
from clipper.admin.dashboard.history import SummaryHistory
from clipper.admin.dashboard.summary import SummarySource
from clipper.admin.dashboard_api import dashboard_routes
from clipper.admin.log_pages import DEFAULT_PAGE_BYTES, read_log_pages
from clipper.admin.openapi import admin_openapi_json
from clipper.admin.request_fields import optional, parse_body, required, string_list
from clipper.control import policies, rollouts
from clipper.control.autoscaling_config import AutoscalingConfig
from clipper.control.service import ClusterService
from clipper.core.exceptions import (
    ClipperError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    RequestRejected,
)
from clipper.core.generation import parse_task
from clipper.core.payload_config import parse_payload_log
from clipper.core.records import ModelVersionRecord
from clipper.core.resources import ResourceRequest
from clipper.core.types import InputType, ModelId, ReplicaId, parse_input_type, validate_version
from clipper.frontend.oip.signature import validate_signature
from clipper.http.errors import error_body, error_row
from clipper.metrics.server_metrics import ServerMetrics
from clipper.security.auth import AdminAuth, QueryTokenGuard
from clipper.security.tokens import AdminTokenFile

__all__ = ["build_admin_app"]

log = logging.getLogger("clipper.admin")
Body = dict[str, Any]
Handler = Callable[[ClusterService, Body], Awaitable[Any]]


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


def _unexpected(operation: str, exc: Exception) -> Response:
    """The error shape (500 `InternalError`) for what no handler expected; the log has the
    traceback. The admin API's callers hold the admin token, so the cause is shown."""
    log.error("admin operation %s failed", operation, exc_info=exc)
    cause = f"{operation} failed: {type(exc).__name__}: {exc} (the server log has more)"
    return _error(InternalError(cause))


def _error(exc: BaseException, headers: Mapping[str, str] | None = None) -> Response:
    body = error_body(exc)
    return Response(body, error_row(exc).http_status, headers, media_type="application/json")


_STARLETTE_ERRORS: dict[int, type[ClipperError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route, wrong method) in the stable error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    cause = f"{request.method} {request.url.path}: {getattr(exc, 'detail', 'error')}"
    error_class = _STARLETTE_ERRORS.get(status, InternalError if status >= 500 else RequestRejected)
    return _error(error_class(cause), getattr(exc, "headers", None))


def _model_id(body: Body) -> ModelId:
    name = required(body, "model_name", str)
    return ModelId(name, validate_version(required(body, "model_version", (str, int))))


# -- handlers: each takes the service and the parsed body, returns a JSON value ------


async def add_app(service: ClusterService, body: Body) -> Any:
    name = required(body, "name", str)
    await service.add_app(
        name,
        parse_input_type(required(body, "input_type", str)),
        str(required(body, "default_output", (str, int, float))),
        required(body, "latency_slo_micros", int),
        optional(body, "policy", str, "single"),
        optional(body, "policy_params", dict, {}),
        optional(body, "show_model_errors", bool, False),
        optional(body, "overload", str, "default"),
        optional(body, "payload_log", dict, None),
        optional(body, "priority", int, 0),
    )
    if optional(body, "require_query_token", bool, False):
        service.registry.set_app_query_auth(name, True)
        await service.announce()  # every query frontend locks it before the answer
    return {"name": name}


async def update_app(service: ClusterService, body: Body) -> Any:
    default_output = optional(body, "default_output", (str, int, float), None)
    return await service.update_app(
        required(body, "name", str),
        optional(body, "latency_slo_micros", int, None),
        None if default_output is None else str(default_output),
        optional(body, "priority", int, None),
    )


async def set_app_policy(service: ClusterService, body: Body) -> Any:
    return await policies.set_app_policy(
        service,
        required(body, "app_name", str),
        required(body, "policy", str),
        optional(body, "policy_params", dict, {}),
    )


async def set_app_model_errors(service: ClusterService, body: Body) -> Any:
    app_name = required(body, "app_name", str)
    show = required(body, "show", bool)
    await service.set_show_model_errors(app_name, show)
    return {"app_name": app_name, "show": show}


async def set_app_overload(service: ClusterService, body: Body) -> Any:
    app_name = required(body, "app_name", str)
    overload = required(body, "overload", str)
    await service.set_app_overload(app_name, overload)
    return {"app_name": app_name, "overload": overload}


async def set_payload_log(service: ClusterService, body: Body) -> Any:
    name = required(body, "name", str)
    if "payload_log" not in body:
        raise InvalidRequest("missing field 'payload_log' (null turns payload logging off)")
    stored = await service.set_payload_log(name, optional(body, "payload_log", dict, None))
    return {"name": name, "payload_log": stored}


async def set_model_payload_log(service: ClusterService, body: Body) -> Any:
    name = required(body, "model_name", str)
    version = optional(body, "model_version", (str, int), None)
    if "payload_log" not in body:
        raise InvalidRequest("missing field 'payload_log' (null turns payload logging off)")
    record = await service.set_model_payload_log(
        name, None if version is None else str(version), optional(body, "payload_log", dict, None)
    )
    return service.model_info(record)


async def set_app_pipeline(service: ClusterService, body: Body) -> Any:
    models = string_list(body, "model_names", default=[])
    return await policies.set_app_pipeline(service, required(body, "app_name", str), models)


async def delete_app(service: ClusterService, body: Body) -> Any:
    name = required(body, "name", str)
    await service.delete_app(name)
    return {"name": name}


async def add_model_links(service: ClusterService, body: Body) -> Any:
    app_name = required(body, "app_name", str)
    models = string_list(body, "model_names")
    await service.add_links(app_name, models)
    return {"app_name": app_name, "model_names": models}


async def delete_model_links(service: ClusterService, body: Body) -> Any:
    app_name = required(body, "app_name", str)
    models = string_list(body, "model_names")
    await service.delete_links(app_name, models)
    return {"app_name": app_name, "model_names": models}


async def add_model(service: ClusterService, body: Body) -> Any:
    model_id = _model_id(body)
    containerless = optional(body, "containerless", bool, False)
    input_type = parse_input_type(required(body, "input_type", str))
    num_replicas = optional(body, "num_replicas", int, None)  # absent: follow the current
    record = ModelVersionRecord(
        name=model_id.name,
        version=model_id.version,
        input_type=input_type,
        labels=tuple(string_list(body, "labels", default=[])),
        container_name=optional(body, "container_name", str, ""),
        model_data_path=optional(body, "model_data_path", str, ""),
        batch_size=optional(body, "batch_size", int, -1),
        batch_wait_timeout_us=optional(body, "batch_wait_timeout_micros", int, 0),
        max_in_flight=optional(body, "max_in_flight", int, 1),
        max_queued=optional(body, "max_queued", int, 0),
        num_replicas=0 if containerless or num_replicas is None else num_replicas,
        containerless=containerless,
        signature=validate_signature(body.get("signature"), input_type),
        output_type=_output_type(body),
        resources=ResourceRequest.parse(body.get("resources")),
        payload_log=parse_payload_log(optional(body, "payload_log", dict, None)),
        task=_task(body, input_type),
    )
    given = num_replicas is not None
    plan = rollout_handlers.parse_rollout_field(body)
    if plan is not None:  # checked before the deploy, which then leaves the version non-current
        rollouts.check_can_start(service, model_id.name, model_id.version)
    await service.add_model(
        record, _ready_timeout_s(body), replicas_given=given, autoscaling=_autoscaling(body),
        make_current=plan is None, payload_log_given="payload_log" in body,
    )  # fmt: skip
    if plan is not None:
        await rollouts.start_rollout(service, model_id.name, model_id.version, plan)
    return _model_info(service, model_id)


def _autoscaling(body: Body) -> AutoscalingConfig | None:
    value = body.get("autoscaling")
    return None if value is None else AutoscalingConfig.parse(value)


async def set_autoscaling(service: ClusterService, body: Body) -> Any:
    name = required(body, "model_name", str)
    version = optional(body, "model_version", (str, int), None)
    if "autoscaling" not in body:
        raise InvalidRequest("missing field 'autoscaling' (its settings, or null to turn it off)")
    record = await service.set_autoscaling(
        name, None if version is None else str(version), _autoscaling(body)
    )
    return service.model_info(record)


def _output_type(body: Body) -> InputType | None:
    output_type = optional(body, "output_type", str, None)
    return None if output_type is None else parse_input_type(output_type)


def _task(body: Body, input_type: InputType) -> str | None:
    task = parse_task(body.get("task"))
    if task is not None and input_type is not InputType.STRINGS:
        raise InvalidRequest(f"a model with task {task!r} takes strings, not {input_type.value}")
    return task


def _ready_timeout_s(body: Body) -> float:
    return float(optional(body, "ready_timeout_s", (int, float), 120.0))


def _model_info(service: ClusterService, model_id: ModelId) -> Any:
    record = service.registry.get_model_version(model_id.name, model_id.version)
    return service.model_info(record) if record is not None else None


async def set_model_version(service: ClusterService, body: Body) -> Any:
    model_id = _model_id(body)
    await service.set_current_version(model_id.name, model_id.version, _ready_timeout_s(body))
    return _model_info(service, model_id)


async def delete_versioned_model(service: ClusterService, body: Body) -> Any:
    model_id = _model_id(body)
    await service.delete_version(model_id.name, model_id.version)
    return {"model_name": model_id.name, "model_version": model_id.version}


async def get_all_applications(service: ClusterService, body: Body) -> Any:
    if service.policy_catch_up is not None:
        await service.policy_catch_up()
    apps = service.all_apps(optional(body, "verbose", bool, False))
    return query_tokens.with_query_auth(service, apps)


async def get_application(service: ClusterService, body: Body) -> Any:
    if service.policy_catch_up is not None:  # several frontends: what they learned
        await service.policy_catch_up()
    return query_tokens.with_query_auth(service, service.app_info(required(body, "name", str)))


async def get_linked_models(service: ClusterService, body: Body) -> Any:
    app_name = required(body, "app_name", str)
    if service.registry.get_app(app_name) is None:
        return []
    return service.registry.linked_models(app_name)


async def get_all_models(service: ClusterService, body: Body) -> Any:
    records = service.registry.list_model_versions()
    if optional(body, "verbose", bool, False):
        return [service.model_info(record) for record in records]
    return [f"{record.name}:{record.version}" for record in records]


async def get_model(service: ClusterService, body: Body) -> Any:
    return _model_info(service, _model_id(body))


async def get_all_containers(service: ClusterService, body: Body) -> Any:
    replicas = service.all_replicas()
    if optional(body, "verbose", bool, False):
        return [service.replica_info(replica) for replica in replicas]
    return [str(replica) for replica in replicas]


async def get_container(service: ClusterService, body: Body) -> Any:
    replica = ReplicaId(_model_id(body), required(body, "replica_id", int))
    return service.replica_info(replica)


async def set_num_replicas(service: ClusterService, body: Body) -> Any:
    name = required(body, "model_name", str)
    version = optional(body, "model_version", (str, int), None)
    resolved = service.resolve_version(name, None if version is None else str(version))
    await service.set_num_replicas(name, required(body, "num_replicas", int), resolved)
    return _model_info(service, ModelId(name, resolved))


async def get_num_replicas(service: ClusterService, body: Body) -> Any:
    name = required(body, "model_name", str)
    version = optional(body, "model_version", (str, int), None)
    resolved = service.resolve_version(name, None if version is None else str(version))
    record = service.registry.get_model_version(name, resolved)
    if record is None:
        raise ModelNotFound(f"No model with name '{name}' and version '{resolved}'")
    return record.num_replicas


async def get_current_model_version(service: ClusterService, body: Body) -> Any:
    return service.resolve_version(required(body, "model_name", str), None)


async def wait_model_ready(service: ClusterService, body: Body) -> Any:
    timeout_s = float(optional(body, "timeout_s", (int, float), 60.0))
    ready = await service.wait_ready(_model_id(body), timeout_s)
    return {"ready_replicas": ready}


async def set_batch_policy(service: ClusterService, body: Body) -> Any:
    name = required(body, "model_name", str)
    version = optional(body, "model_version", (str, int), None)
    record = await service.set_batch_policy(
        name,
        None if version is None else str(version),
        optional(body, "batch_size", int, None),
        optional(body, "batch_wait_timeout_micros", int, None),
        optional(body, "max_in_flight", int, None),
    )
    return service.model_info(record)


async def set_cache(service: ClusterService, body: Body) -> Any:
    app_name = optional(body, "app_name", str, None)
    model_name = optional(body, "model_name", str, None)
    enabled = required(body, "enabled", bool)
    await service.set_cache(app_name, model_name, enabled)
    return {"app_name": app_name, "model_name": model_name, "enabled": enabled}


async def prepare_environment(service: ClusterService, body: Body) -> Any:
    model_id = _model_id(body)
    return await service.prepare_environment(model_id.name, model_id.version)


async def get_environments(service: ClusterService, body: Body) -> Any:
    return service.environments.statuses() if service.environments is not None else []


async def get_events(service: ClusterService, body: Body) -> Any:
    since = optional(body, "since", int, None)
    limit = optional(body, "limit", int, 100)
    if since is None:  # the newest `limit` events, oldest first
        since = max(0, service.registry.last_event_seq() - limit)
    return service.registry.events_since(since, limit)


async def get_logs(service: ClusterService, body: Body) -> Any:
    return await asyncio.to_thread(  # file I/O: off the loop
        read_log_pages,
        service.state_dir / "logs",
        optional(body, "name", str, None),
        optional(body, "offset", int, 0),
        optional(body, "max_bytes", int, DEFAULT_PAGE_BYTES),
    )


_GET_ONLY = frozenset({"ping"})
"""`/admin/<name>` paths answered to GET only (POST to them is 405, not an operation)."""

_HANDLERS: dict[str, Handler] = {
    handler.__name__: handler
    for handler in (
        add_app, update_app, delete_app, add_model_links, delete_model_links, add_model,
        set_model_version, delete_versioned_model, get_all_applications, get_application,
        get_linked_models, get_all_models, get_model, get_all_containers, get_container,
        set_num_replicas, get_num_replicas, get_current_model_version, wait_model_ready,
        set_autoscaling, set_batch_policy, set_cache, get_logs, prepare_environment,
        get_environments,
        get_events, set_app_policy, set_app_pipeline, set_app_model_errors,
        set_app_overload, set_payload_log, set_model_payload_log,
        query_tokens.create_query_token, query_tokens.get_query_tokens,
        query_tokens.revoke_query_token, query_tokens.set_app_query_auth,
        rollout_handlers.start_rollout, rollout_handlers.get_rollout,
        rollout_handlers.promote_rollout, rollout_handlers.abort_rollout,
        rollout_handlers.pause_rollout, rollout_handlers.resume_rollout,
    )
}  # fmt: skip


def build_admin_app(
    service: ClusterService,
    metrics: ServerMetrics,
    status: Callable[[], dict[str, Any]],
    request_shutdown: Callable[[], None],
    max_body_bytes: int,
    *,
    token_file: AdminTokenFile | None = None,
    query_guard: QueryTokenGuard | None = None,
    history: SummaryHistory | None = None,
    summary_source: SummarySource | None = None,
    restart_frontends: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None,
) -> Starlette | AdminAuth:
    """The admin ASGI app over a ClusterService: behind the admin token when `token_file`
    is given; `query_guard` is rebuilt after every operation that may change it; `history`
    is the dashboard's (clipper.admin.dashboard.history), empty when not given;
    `summary_source` its summary when not `metrics`' alone (several frontends);
    `restart_frontends` the rolling restart of several query frontends (clipper.frontends),
    None with one."""

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_body_bytes:
            raise PayloadTooLarge(f"request body over the limit of {max_body_bytes} bytes")
        return await request.body()

    async def dispatch(request: Request) -> Response:
        operation = request.path_params["operation"]
        handler = _HANDLERS.get(operation)
        if operation in _GET_ONLY:
            raise HTTPException(405, "use GET", {"Allow": "GET"})
        if handler is None:
            return _error(NotFound(f"no admin operation {request.url.path}"))
        try:
            answer = await handler(service, parse_body(await read_body(request)))
        except ClipperError as exc:
            return _error(exc)
        except Exception as exc:  # a bug or the machine (say, a read-only state directory)
            return _unexpected(operation, exc)
        finally:
            if query_guard is not None and not handler.__name__.startswith("get_"):
                query_tokens.reload_guard(query_guard, service)
        return _json(answer)

    async def upload_artifact(request: Request) -> Response:
        try:
            path = service.store_artifact(
                request.path_params["model_name"],
                request.path_params["model_version"],
                await read_body(request),
            )
        except ClipperError as exc:
            return _error(exc)
        except Exception as exc:
            return _unexpected("upload_artifact", exc)
        return _json({"model_data_path": str(path)})

    async def ping(request: Request) -> Response:
        return PlainTextResponse("PONG")

    async def metrics_json(request: Request) -> Response:
        return _json(metrics.snapshot())

    async def status_json(request: Request) -> Response:
        return _json(status())

    async def get_rollout(request: Request) -> Response:
        """`get_rollout` by POST (as every operation) or by GET with `?model_name=`."""
        try:
            if request.method == "POST":
                body = parse_body(await read_body(request))
            else:
                unknown = sorted(set(request.query_params) - {"model_name"})
                if unknown:
                    raise InvalidRequest(f"unknown query parameter(s): {', '.join(unknown)}")
                body = {"model_name": request.query_params.get("model_name")}
            return _json(await rollout_handlers.get_rollout(service, body))
        except ClipperError as exc:
            return _error(exc)

    async def openapi(request: Request) -> Response:
        return Response(admin_openapi_json(), media_type="application/json")

    async def shutdown(request: Request) -> Response:
        request_shutdown()
        return _json({"stopping": True})

    async def restart_frontends_op(request: Request) -> Response:
        if restart_frontends is None:
            return _error(InvalidRequest(
                "this server runs one query frontend (frontends=1): nothing to restart; "
                "restart the server instead"
            ))  # fmt: skip
        try:
            return _json({"frontends": await restart_frontends()})
        except ClipperError as exc:
            return _error(exc)

    routes = [
        Route("/admin/ping", ping, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/admin/metrics", metrics_json, methods=["GET", "POST"]),
        Route("/admin/status", status_json, methods=["GET", "POST"]),
        Route("/admin/shutdown", shutdown, methods=["POST"]),
        Route("/admin/restart_frontends", restart_frontends_op, methods=["POST"]),
        Route("/admin/get_rollout", get_rollout, methods=["GET", "POST"]),
        Route("/admin/artifacts/{model_name}/{model_version}", upload_artifact, methods=["PUT"]),
        # the web dashboard at / (issue 10)
        *dashboard_routes(service, metrics, history, summary_source),
        Route("/admin/{operation}", dispatch, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    return app if token_file is None else AdminAuth(app, token_file)
