"""Synchronous clients of the admin API (docs/admin-api.md) and the query API.

This module is the seam between HTTP and Clipper's exception tree: every error response and
every transport failure is translated here, once, into a `ClipperError` subclass.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError, InvalidInput, ServerUnreachable
from clipper.environments.progress import BuildProgressWatcher
from clipper.http.errors import error_class as error_class_of
from clipper.security.tls import client_verify, scheme
from clipper.security.tokens import read_admin_token

__all__ = [
    "AdminClient",
    "QueryClient",
    "ServerUnreachable",
    "admin_token_source",
    "encode_json_input",
]

Version = str | int
"""Clipper accepted integer versions; they are sent as strings."""
Verify = bool | ssl.SSLContext
"""How a client checks an https server: an SSLContext (see clipper.security.tls.client_context
for one that trusts a CA file), or True (the system's CAs)."""
TokenSource = str | Callable[[], str | None] | None
"""A bearer token, or a function read before each request (None: send none)."""

_ClientT = TypeVar("_ClientT", bound="_HttpClient")


class _BearerAuth(httpx.Auth):
    """`Authorization: Bearer <token>`, the token (re-)read before every request, so a
    rotated admin token is picked up without a new client."""

    def __init__(self, token: TokenSource) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token() if callable(self._token) else self._token
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


class _HttpClient:
    """An httpx client whose failures are translated into Clipper's exceptions.

    With `keep_alive=False` no connection outlives its request, so a client that is never
    closed leaks no socket (what long-lived, never-closed `ClipperConnection`s need).
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        transport: httpx.BaseTransport | None,
        keep_alive: bool,
        token: TokenSource = None,
        verify: Verify = True,
    ) -> None:
        self.base_url = base_url
        limits = httpx.Limits(
            max_connections=100, max_keepalive_connections=20 if keep_alive else 0
        )
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout_s, transport=transport, limits=limits,
            auth=_BearerAuth(token), verify=verify,
        )  # fmt: skip

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def __enter__(self: _ClientT) -> _ClientT:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"Cannot reach Clipper at {self.base_url}{path}: {exc or type(exc).__name__}"
            ) from exc
        if response.is_error:
            raise self._error(response)
        return response

    def _send_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ClipperError(f"{path} answered invalid JSON: {response.text[:200]!r}") from exc

    def _error(self, response: httpx.Response) -> ClipperError:
        """The exception that an error response stands for: the class its `code` names in
        the one error table (clipper.http.errors), else ClipperError."""
        code, cause = _error_parts(response)
        error_class = error_class_of(code) if code else None
        return (error_class or ClipperError)(cause)


class AdminClient(_HttpClient):
    """Typed client of the admin API: one method per endpoint of docs/admin-api.md.

    `token` is the admin token (or a function giving it before each request); `https`
    and `verify` (an SSLContext that trusts the server's CA) reach a server with TLS.
    `from_settings` finds all three by itself.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1338,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        keep_alive: bool = True,
        token: TokenSource = None,
        https: bool = False,
        verify: Verify = True,
    ) -> None:
        url = f"{'https' if https else 'http'}://{host}:{port}"
        super().__init__(url, timeout_s, transport, keep_alive, token, verify)
        self._timeout_s = timeout_s

    @classmethod
    def from_settings(
        cls, settings: Settings, *, timeout_s: float = 30.0, keep_alive: bool = True
    ) -> AdminClient:
        """A client of the admin API that `settings` describe, with the admin token from
        `CLIPPER_ADMIN_TOKEN`, else from `<state_dir>/admin_token` (re-read per request)."""
        return cls(
            settings.host, settings.admin_port, timeout_s=timeout_s, keep_alive=keep_alive,
            token=admin_token_source(settings), https=scheme(settings) == "https",
            verify=client_verify(settings),
        )  # fmt: skip

    def ping(self) -> str:
        """`GET /admin/ping`: the text `PONG` when the server is up."""
        return self._send("GET", "/admin/ping").text.strip()

    def add_app(
        self,
        name: str,
        input_type: str,
        default_output: str,
        latency_slo_micros: int,
        policy: str | None = None,
        policy_params: Mapping[str, Any] | None = None,
        show_model_errors: bool = False,
        overload: str = "default",
        payload_log: Mapping[str, Any] | None = None,
        priority: int = 0,
    ) -> dict[str, Any]:
        """Register an application, optionally under a selection policy (clipper.selection).
        `show_model_errors` sends a model's exception text to its clients (development).
        `overload` is what its queries refused by admission control get: the default output
        (`default`) or an `Overloaded` error (`reject`: 429 with Retry-After).
        `payload_log` records its queries (see `set_payload_log`). `priority` is its class,
        0 (default) to 9: under contention higher classes are served first and shed last."""
        body: dict[str, Any] = {
            "name": name,
            "input_type": input_type,
            "default_output": default_output,
            "latency_slo_micros": latency_slo_micros,
        }
        if policy is not None:
            body["policy"] = policy
        if policy_params:
            body["policy_params"] = dict(policy_params)
        if show_model_errors:
            body["show_model_errors"] = True
        if overload != "default":
            body["overload"] = overload
        if payload_log is not None:
            body["payload_log"] = dict(payload_log)
        if priority:
            body["priority"] = priority
        return _as_dict(self._post("add_app", body))

    def update_app(
        self,
        name: str,
        *,
        latency_slo_micros: int | None = None,
        default_output: str | None = None,
        priority: int | None = None,
    ) -> dict[str, Any]:
        """Change an app's latency SLO, default output and priority class (one left None
        stays), in effect for its next query; returns the app's info."""
        body: dict[str, Any] = {"name": name}
        if latency_slo_micros is not None:
            body["latency_slo_micros"] = latency_slo_micros
        if default_output is not None:
            body["default_output"] = default_output
        if priority is not None:
            body["priority"] = priority
        return _as_dict(self._post("update_app", body))

    def set_app_policy(
        self, app_name: str, policy: str, policy_params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Set an app's selection policy and its parameters; returns the app's info."""
        body = {"app_name": app_name, "policy": policy, "policy_params": dict(policy_params or {})}
        return _as_dict(self._post("set_app_policy", body))

    def set_app_pipeline(self, app_name: str, model_names: Sequence[str]) -> dict[str, Any]:
        """Make an app a pipeline of models (types checked); `[]` makes it plain again."""
        body = {"app_name": app_name, "model_names": list(model_names)}
        return _as_dict(self._post("set_app_pipeline", body))

    def set_app_model_errors(self, app_name: str, show: bool) -> dict[str, Any]:
        """Whether the app's default answers carry its models' exception text (for
        development) or only the exception's type and a reference into the server log."""
        return _as_dict(self._post("set_app_model_errors", {"app_name": app_name, "show": show}))

    def set_app_overload(self, app_name: str, overload: str) -> dict[str, Any]:
        """What the app's queries refused by admission control get: its default output
        (`default`) or an `Overloaded` error (`reject`)."""
        body = {"app_name": app_name, "overload": overload}
        return _as_dict(self._post("set_app_overload", body))

    def set_payload_log(
        self, app_name: str, payload_log: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Record each sampled query of the app (and its feedback): `payload_log` is
        `{"sink": "jsonl" | "cloudevents:URL" | "redis://HOST:PORT/STREAM", "sample": 0.1,
        "fields": [...]}` (README's "Payload logging"); None turns it off. Returns
        `{"name", "payload_log"}` as stored."""
        body = {"name": app_name, "payload_log": None if payload_log is None else dict(payload_log)}
        return _as_dict(self._post("set_payload_log", body))

    def set_model_payload_log(
        self,
        model_name: str,
        payload_log: Mapping[str, Any] | None,
        model_version: Version | None = None,
    ) -> dict[str, Any]:
        """Record each query a model version (default: the current one) answered, whichever
        app asked, and each query of the version itself (`payload_log` as `set_payload_log`;
        None turns it off). Returns the version's info dict."""
        body: dict[str, Any] = {
            "model_name": model_name,
            "payload_log": None if payload_log is None else dict(payload_log),
        }
        if model_version is not None:
            body["model_version"] = str(model_version)
        return _as_dict(self._post("set_model_payload_log", body))

    def set_cache(
        self, enabled: bool, *, app_name: str | None = None, model_name: str | None = None
    ) -> dict[str, Any]:
        """Turn the prediction cache on or off for an app or for one model; a query is
        answered from the cache only where both its app and its model have it on."""
        body = {"app_name": app_name, "model_name": model_name, "enabled": enabled}
        return _as_dict(self._post("set_cache", body))

    def set_batch_policy(
        self,
        model_name: str,
        model_version: Version | None = None,
        *,
        batch_size: int | None = None,
        batch_wait_timeout_micros: int | None = None,
        max_in_flight: int | None = None,
    ) -> dict[str, Any]:
        """Change a version's batching (default: the current version); a setting left None
        keeps its value. `batch_size` -1 is adaptive. Returns the version's info."""
        body: dict[str, Any] = {
            "model_name": model_name,
            "batch_size": batch_size,
            "batch_wait_timeout_micros": batch_wait_timeout_micros,
            "max_in_flight": max_in_flight,
        }
        if model_version is not None:
            body["model_version"] = str(model_version)
        return _as_dict(self._post("set_batch_policy", body))

    def delete_app(self, name: str) -> dict[str, Any]:
        """Remove an application; its models stay."""
        return _as_dict(self._post("delete_app", {"name": name}))

    def add_model_links(self, app_name: str, model_names: Sequence[str]) -> dict[str, Any]:
        """Link models to an application."""
        body = {"app_name": app_name, "model_names": list(model_names)}
        return _as_dict(self._post("add_model_links", body))

    def delete_model_links(self, app_name: str, model_names: Sequence[str]) -> dict[str, Any]:
        """Unlink models from an application."""
        body = {"app_name": app_name, "model_names": list(model_names)}
        return _as_dict(self._post("delete_model_links", body))

    def add_model(
        self,
        model_name: str,
        model_version: Version,
        input_type: str,
        *,
        labels: Sequence[str] = (),
        container_name: str = "",
        model_data_path: str = "",
        batch_size: int = -1,
        num_replicas: int | None = None,
        containerless: bool = False,
        batch_wait_timeout_micros: int = 0,
        max_in_flight: int = 1,
        max_queued: int = 0,
        ready_timeout_s: float = 120.0,
        signature: dict[str, Any] | str | None = None,
        output_type: str | None = None,
        resources: Mapping[str, Any] | None = None,
        autoscaling: Mapping[str, Any] | None = None,
        rollout: bool | Mapping[str, Any] | None = None,
        payload_log: Mapping[str, Any] | None = None,
        task: str | None = None,
    ) -> dict[str, Any]:
        """Register a model version; the server starts its replicas and makes it current
        once they are all ready (DeployFailed, with the worker's error, if they are not
        within `ready_timeout_s`). `signature` declares its Open Inference Protocol
        inputs and outputs (see clipper.frontend.oip.signature); `output_type` the type of
        its outputs as the input of a next pipeline step; `resources` what each replica
        asks of its node (see clipper.core.resources). `max_queued` bounds its batch queue
        (0: what its replicas can finish within the longest SLO). `num_replicas` None leaves
        the count to the server: as many as the current version has (1 for a new model), and
        the version it replaces is scaled to zero once this one is current. `autoscaling`
        (`{"min_replicas", "max_replicas", ...}`, README.md#autoscaling) lets the server
        scale it against its SLO. `rollout` (True, or a plan: README.md#canary-rollouts)
        starts a canary rollout of it against the current version once its replicas are
        ready, instead of making it current (see `get_rollout`). `payload_log` records each
        query it answers (see `set_model_payload_log`; None: as the current version does).
        `task` (`text-generation`, `chat` or `embedding`, for a `strings` model) serves it
        through the OpenAI-compatible API (clipper.core.generation). Returns its info dict."""
        body: dict[str, Any] = {
            **_model_key(model_name, model_version),
            "input_type": input_type,
            "labels": list(labels),
            "container_name": container_name,
            "model_data_path": model_data_path,
            "batch_size": batch_size,
            "containerless": containerless,
            "batch_wait_timeout_micros": batch_wait_timeout_micros,
            "max_in_flight": max_in_flight,
            "ready_timeout_s": ready_timeout_s,
        }
        if num_replicas is not None:
            body["num_replicas"] = num_replicas
        if max_queued:
            body["max_queued"] = max_queued
        if signature is not None:
            body["signature"] = signature
        if output_type is not None:
            body["output_type"] = output_type
        if task is not None:
            body["task"] = task
        if resources:
            body["resources"] = dict(resources)
        if autoscaling is not None:
            body["autoscaling"] = dict(autoscaling)
        if rollout:
            body["rollout"] = rollout if rollout is True else dict(rollout)
        if payload_log is not None:
            body["payload_log"] = dict(payload_log)
        return _as_dict(self._post("add_model", body, timeout_s=ready_timeout_s + self._timeout_s))

    def set_model_version(
        self, model_name: str, model_version: Version, ready_timeout_s: float = 120.0
    ) -> dict[str, Any]:
        """Make a registered version the current one, once its replicas are ready."""
        body = {**_model_key(model_name, model_version), "ready_timeout_s": ready_timeout_s}
        timeout_s = ready_timeout_s + self._timeout_s
        return _as_dict(self._post("set_model_version", body, timeout_s=timeout_s))

    def delete_versioned_model(self, model_name: str, model_version: Version) -> dict[str, Any]:
        """Stop a version's replicas and unregister it."""
        body = _model_key(model_name, model_version)
        return _as_dict(self._post("delete_versioned_model", body, timeout_s=120.0))

    def get_all_applications(self, verbose: bool = False) -> list[Any]:
        """App names, or app info dicts when `verbose`."""
        return _as_list(self._post("get_all_applications", {"verbose": verbose}))

    def get_application(self, name: str) -> dict[str, Any] | None:
        """An app info dict, or None for an unknown app."""
        return _as_optional_dict(self._post("get_application", {"name": name}))

    def get_linked_models(self, app_name: str) -> list[str]:
        """Names of the models linked to an app."""
        return [
            str(name) for name in _as_list(self._post("get_linked_models", {"app_name": app_name}))
        ]

    def get_all_models(self, verbose: bool = False) -> list[Any]:
        """`"name:version"` strings, or model info dicts when `verbose`."""
        return _as_list(self._post("get_all_models", {"verbose": verbose}))

    def get_model(self, model_name: str, model_version: Version) -> dict[str, Any] | None:
        """A model info dict, or None for an unknown version."""
        return _as_optional_dict(self._post("get_model", _model_key(model_name, model_version)))

    def get_all_containers(self, verbose: bool = False) -> list[Any]:
        """`"name:version:replica_id"` strings, or replica info dicts when `verbose`."""
        return _as_list(self._post("get_all_containers", {"verbose": verbose}))

    def get_container(
        self, model_name: str, model_version: Version, replica_id: int
    ) -> dict[str, Any] | None:
        """A replica info dict, or None for an unknown replica."""
        body = {**_model_key(model_name, model_version), "replica_id": replica_id}
        return _as_optional_dict(self._post("get_container", body))

    def upload_artifact(self, model_name: str, model_version: Version, tar_bytes: bytes) -> str:
        """Upload an artifact archive; returns its `model_data_path` on the server."""
        path = f"/admin/artifacts/{model_name}/{model_version}"
        gzipped = tar_bytes[:2] == b"\x1f\x8b"
        headers = {"content-type": "application/gzip" if gzipped else "application/x-tar"}
        answer = _as_dict(self._send_json("PUT", path, content=tar_bytes, headers=headers))
        return str(answer["model_data_path"])

    def deploy_artifact(
        self,
        model_name: str,
        model_version: Version,
        input_type: str,
        artifact: bytes,
        *,
        labels: Sequence[str] = (),
        container_name: str = "",
        batch_size: int = -1,
        num_replicas: int | None = None,
        ready_timeout_s: float = 60.0,
        signature: dict[str, Any] | str | None = None,
        progress: Callable[[str], None] | None = None,
        build_timeout_s: float = 900.0,
        output_type: str | None = None,
        resources: Mapping[str, Any] | None = None,
        autoscaling: Mapping[str, Any] | None = None,
        rollout: bool | Mapping[str, Any] | None = None,
        payload_log: Mapping[str, Any] | None = None,
        task: str | None = None,
    ) -> dict[str, Any]:
        """Upload `artifact`, prepare its environment (building a venv if the server's
        interpreter does not satisfy it, reporting each step to `progress`), register the
        version and wait until its replicas are ready (`num_replicas` None, `rollout` and
        `payload_log`, `task`: as `add_model`).

        Returns the version's model info dict; raises DeployFailed if the environment cannot
        be built or the replicas do not start.
        """
        model_data_path = self.upload_artifact(model_name, model_version, artifact)
        if progress is None:
            self.prepare_environment(model_name, model_version, build_timeout_s)
        else:
            since = max([event["seq"] for event in self.get_events(limit=1)], default=0)
            model = f"{model_name}:{model_version}"
            with BuildProgressWatcher(self._events_after, model, since, progress):
                self.prepare_environment(model_name, model_version, build_timeout_s)
        info = self.add_model(
            model_name,
            model_version,
            input_type,
            labels=labels,
            container_name=container_name,
            model_data_path=model_data_path,
            batch_size=batch_size,
            num_replicas=num_replicas,
            ready_timeout_s=ready_timeout_s,
            signature=signature,
            output_type=output_type,
            resources=resources,
            autoscaling=autoscaling,
            rollout=rollout,
            payload_log=payload_log,
            task=task,
        )
        return info

    def prepare_environment(
        self, model_name: str, model_version: Version, timeout_s: float = 900.0
    ) -> dict[str, Any]:
        """Make an uploaded artifact's environment ready on the server (built and cached
        unless the server's interpreter satisfies it); returns its status."""
        body = _model_key(model_name, model_version)
        return _as_dict(self._post("prepare_environment", body, timeout_s=timeout_s))

    def get_environments(self) -> list[dict[str, Any]]:
        """Every model environment the server has built, is building or failed to build."""
        return _as_list(self._post("get_environments", {}))

    def get_events(self, since: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Events after sequence number `since` (default: the newest `limit`), oldest
        first: `[{"seq", "ts", "kind", "detail"}]`."""
        body: dict[str, Any] = {"limit": limit}
        if since is not None:
            body["since"] = since
        return _as_list(self._post("get_events", body))

    def _events_after(self, since: int) -> list[dict[str, Any]]:
        return self.get_events(since)

    def wait_model_ready(
        self, model_name: str, model_version: Version, timeout_s: float = 60.0
    ) -> int:
        """Block until every target replica is connected; returns how many are ready."""
        body = {**_model_key(model_name, model_version), "timeout_s": timeout_s}
        answer = self._post("wait_model_ready", body, timeout_s=timeout_s + self._timeout_s)
        return int(_as_dict(answer)["ready_replicas"])

    def set_num_replicas(
        self, model_name: str, num_replicas: int, model_version: Version | None = None
    ) -> dict[str, Any]:
        """Set a version's replica target (default: the current version)."""
        body: dict[str, Any] = {"model_name": model_name, "num_replicas": num_replicas}
        if model_version is not None:
            body["model_version"] = str(model_version)
        return _as_dict(self._post("set_num_replicas", body))

    def set_autoscaling(
        self,
        model_name: str,
        autoscaling: Mapping[str, Any] | None,
        model_version: Version | None = None,
    ) -> dict[str, Any]:
        """Autoscale a version (default: the current one) within `autoscaling`
        (`{"min_replicas", "max_replicas", ...}`, README.md#autoscaling), or stop (None):
        its replicas then stay where the autoscaler left them. Returns its info dict."""
        body: dict[str, Any] = {
            "model_name": model_name,
            "autoscaling": None if autoscaling is None else dict(autoscaling),
        }
        if model_version is not None:
            body["model_version"] = str(model_version)
        return _as_dict(self._post("set_autoscaling", body))

    def start_rollout(
        self,
        model_name: str,
        model_version: Version,
        plan: Mapping[str, Any] | None = None,
        ready_timeout_s: float = 120.0,
    ) -> dict[str, Any]:
        """Roll a registered version out against the model's current version, step by
        step, judged on the live traffic; `plan` None: the defaults (README.md#canary-
        rollouts). Returns the rollout's status (as `get_rollout`)."""
        body: dict[str, Any] = {**_model_key(model_name, model_version),
                                "ready_timeout_s": ready_timeout_s}  # fmt: skip
        if plan is not None:
            body["plan"] = dict(plan)
        timeout_s = ready_timeout_s + self._timeout_s
        return _as_dict(self._post("start_rollout", body, timeout_s=timeout_s))

    def get_rollout(self, model_name: str) -> dict[str, Any] | None:
        """The model's running rollout (else its last one): state, step, share, each
        check's figures against its threshold, time left; None if it never had one."""
        return _as_optional_dict(self._post("get_rollout", {"model_name": model_name}))

    def promote_rollout(self, model_name: str) -> dict[str, Any]:
        """Skip the rest of the model's running rollout: its new version becomes current."""
        return _as_dict(self._post("promote_rollout", {"model_name": model_name}))

    def pause_rollout(self, model_name: str) -> dict[str, Any]:
        """Hold the model's running rollout: its split stays, no step advances or is
        judged, its step's time left is kept (Conflict if paused already)."""
        return _as_dict(self._post("pause_rollout", {"model_name": model_name}))

    def resume_rollout(self, model_name: str) -> dict[str, Any]:
        """Go on with the model's paused rollout (Conflict if it is not paused)."""
        return _as_dict(self._post("resume_rollout", {"model_name": model_name}))

    def abort_rollout(self, model_name: str) -> dict[str, Any]:
        """Stop the model's running rollout: all traffic goes back to the current version."""
        return _as_dict(self._post("abort_rollout", {"model_name": model_name}))

    def get_num_replicas(self, model_name: str, model_version: Version | None = None) -> int:
        """A version's replica target (default: the current version)."""
        body: dict[str, Any] = {"model_name": model_name}
        if model_version is not None:
            body["model_version"] = str(model_version)
        return int(self._post("get_num_replicas", body))

    def get_current_model_version(self, model_name: str) -> str:
        """The current version of a model."""
        return str(self._post("get_current_model_version", {"model_name": model_name}))

    def get_logs(self) -> list[dict[str, str]]:
        """The server's and every replica's log, whole: `[{"name": ..., "content": ...}]`
        (read a page at a time, see `log_page`)."""
        return [
            {"name": name, "content": "".join(self.read_log(name))} for name in self.log_names()
        ]

    def log_names(self) -> list[str]:
        """The names of the server's and the replicas' logs."""
        page = self.log_page(max_bytes=4)  # the smallest page: names and sizes
        return [str(entry["name"]) for entry in page]

    def log_page(
        self, name: str | None = None, offset: int = 0, max_bytes: int | None = None
    ) -> list[dict[str, Any]]:
        """One page of the logs (`POST /admin/get_logs`): per log `{name, size, offset,
        next_offset, content}`, at most `max_bytes` of content in all (the server's default
        1 MiB when None)."""
        body: dict[str, Any] = {"name": name, "offset": offset}
        if max_bytes is not None:
            body["max_bytes"] = max_bytes
        return [
            _as_dict(entry) for entry in _as_list(_as_dict(self._post("get_logs", body))["logs"])
        ]

    def read_log(self, name: str, offset: int = 0) -> Iterator[str]:
        """The text of log `name` from `offset` to its end, a page at a time."""
        for page in self.log_pages(name, offset):
            if page["content"]:
                yield str(page["content"])

    def log_pages(self, name: str, offset: int = 0) -> Iterator[dict[str, Any]]:
        """The pages of log `name` from `offset` to its end (its size when the first
        page was read): `log_page`'s entries, the last one's `next_offset` where it ended."""
        while True:
            [page] = self.log_page(name, offset)
            yield page
            offset = int(page["next_offset"])
            if offset >= int(page["size"]) or offset == int(page["offset"]):
                return

    def save_logs(self, directory: Path) -> list[Path]:
        """Write every log into `directory` a page at a time; returns the files written."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in self.log_names():
            path = directory / Path(name).name  # never outside `directory`
            with path.open("w", encoding="utf-8") as file:
                for text in self.read_log(name):
                    file.write(text)
            paths.append(path)
        return paths

    def metrics(self) -> dict[str, Any]:
        """The server's metrics as JSON."""
        return _as_dict(self._post("metrics", {}))

    def status(self) -> dict[str, Any]:
        """Cluster name, pid, addresses, state dir and object counts of the server."""
        return _as_dict(self._post("status", {}))

    def shutdown(self) -> dict[str, Any]:
        """Ask the server to stop its workers and exit."""
        return _as_dict(self._post("shutdown", {}))

    def restart_frontends(self) -> dict[str, Any]:
        """Replace the query frontends one at a time (a server of several); returns once
        done, with `frontends` as `status()` lists them."""
        return _as_dict(self._post("restart_frontends", {}, max(self._timeout_s, 300.0)))

    def _post(self, endpoint: str, body: Mapping[str, Any], timeout_s: float | None = None) -> Any:
        timeout = self._timeout_s if timeout_s is None else timeout_s
        return self._send_json("POST", f"/admin/{endpoint}", json=dict(body), timeout=timeout)


class QueryClient(_HttpClient):
    """Client of the query API: `POST /<app>/predict`.

    `token` is a query token, needed only by apps that require one; `https` and `verify`
    as for AdminClient.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1337,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        keep_alive: bool = True,
        token: str | None = None,
        https: bool = False,
        verify: Verify = True,
    ) -> None:
        url = f"{'https' if https else 'http'}://{host}:{port}"
        super().__init__(url, timeout_s, transport, keep_alive, token, verify)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        timeout_s: float = 30.0,
        keep_alive: bool = True,
        token: str | None = None,
    ) -> QueryClient:
        """A client of the query API that `settings` describe (with `token`, a query token)."""
        return cls(
            settings.host, settings.query_port, timeout_s=timeout_s, keep_alive=keep_alive,
            token=token, https=scheme(settings) == "https", verify=client_verify(settings),
        )  # fmt: skip

    def predict(
        self,
        app: str,
        input: Any = None,
        input_batch: Sequence[Any] | None = None,
        version: Version | None = None,
        uid: int | None = None,
    ) -> dict[str, Any]:
        """Ask `app` for a prediction of one `input`, or of every item of `input_batch`.

        Numpy arrays are sent as lists and bytes as base64. `uid` identifies the user for
        selection policies (sticky A/B arms, per-user state). Returns the JSON reply:
        `{"query_id", "output", "default", "models"}`, or `{"batch_predictions": [...]}`
        for a batch.
        """
        if (input is None) == (input_batch is None):
            raise InvalidInput("Give exactly one of input and input_batch")
        body: dict[str, Any]
        if input_batch is None:
            body = {"input": encode_json_input(input)}
        else:
            body = {"input_batch": [encode_json_input(item) for item in input_batch]}
        if version is not None:
            body["version"] = str(version)
        if uid is not None:
            body["uid"] = uid
        return _as_dict(self._send_json("POST", f"/{app}/predict", json=body))

    def update(
        self,
        app: str,
        uid: int | None = None,
        input: Any = None,
        label: Any = None,
        *,
        query_id: int | None = None,
        reward: float | None = None,
    ) -> dict[str, Any]:
        """Send feedback to `app`'s selection policy: Clipper's `uid`, `input` and `label`,
        or the `query_id` of an earlier answer with its true `label` or a `reward`.

        Returns `{"query_id", "policy", "rewards": {"name:version": reward}}`.
        """
        body: dict[str, Any] = {}
        if query_id is not None:
            body["query_id"] = query_id
        elif input is not None:
            body["input"] = encode_json_input(input)
        if uid is not None:
            body["uid"] = uid
        if label is not None:
            body["label"] = encode_json_input(label)
        if reward is not None:
            body["reward"] = reward
        return _as_dict(self._send_json("POST", f"/{app}/update", json=body))

    def healthz(self) -> None:
        """Return when `GET /healthz` answers with a success status; raise otherwise."""
        self._send("GET", "/healthz")

    def metrics_text(self) -> str:
        """The Prometheus text of `GET /metrics`."""
        return self._send("GET", "/metrics").text


def admin_token_source(settings: Settings) -> TokenSource:
    """`CLIPPER_ADMIN_TOKEN` when set, else a reader of `<state_dir>/admin_token`."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    state_dir = settings.resolved_state_dir()
    return lambda: read_admin_token(state_dir)


def encode_json_input(value: Any) -> Any:
    """Make an input JSON-ready: arrays and numpy scalars as lists/numbers, bytes as base64."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [encode_json_input(item) for item in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, without importing numpy
        return value.tolist()
    return value


def _model_key(model_name: str, model_version: Version) -> dict[str, Any]:
    return {"model_name": model_name, "model_version": str(model_version)}


def _error_parts(response: httpx.Response) -> tuple[str, str]:
    """The `code` and the `cause` of an error response ("" and the text when it has none)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        return str(body.get("code") or ""), str(body.get("cause") or body["error"])
    text = response.text.strip() or response.reason_phrase
    return "", f"HTTP {response.status_code}: {text}"


def _as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ClipperError(f"Expected a JSON object from the server, got {value!r:.200}")
    return value


def _as_optional_dict(value: Any) -> dict[str, Any] | None:
    return None if value is None else _as_dict(value)


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ClipperError(f"Expected a JSON list from the server, got {value!r:.200}")
    return value
