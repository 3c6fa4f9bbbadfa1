"""The `clipper` command's implementations and its small helpers (tables, function loading).

Each command takes the parsed arguments and the `Settings` built from flags over the
environment, prints its result to stdout and raises ClipperError on failure.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipper.admin.dashboard import dashboard_url
from clipper.artifacts.format import pack_directory
from clipper.artifacts.python import directory_artifact
from clipper.cli import change_commands, launcher, serve
from clipper.cli.clients import admin_client, query_client
from clipper.cli.deploying import (
    deploy_function_file,
    load_function,
    model_name_of,
    print_progress,
    version_and_type,
)
from clipper.cli.rollout_commands import parse_plan, rollout
from clipper.core.config import Settings
from clipper.core.exceptions import InvalidRequest, ModelNotFound
from clipper.core.process_memory import pause_collector, resume_collector
from clipper.security import (
    admin_token_path,
    prepare_admin_token,
    read_admin_token,
    scheme,
    write_admin_token,
)

if TYPE_CHECKING:
    from clipper.client import AdminClient

__all__ = [
    "COMMANDS",
    "DEFAULT_ANSWER_EXIT_CODE",
    "Command",
    "format_table",
    "load_function",
    "policy_params",
    "previous_version",
]

Command = Callable[[argparse.Namespace, Settings], int | None]
"""A command: parsed arguments and settings in, output on stdout, ClipperError on failure;
an exit status other than 0 it may return (None: 0)."""

DEFAULT_ANSWER_EXIT_CODE = 2
"""`clipper predict`'s exit status when an answer is the app's default output."""


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Align `rows` under `headers` and a dashed rule.

    Columns holding only numbers are right-aligned; None prints as `-`, booleans as
    `yes`/`no`, lists comma-joined. Trailing spaces are stripped.
    """
    values = [list(row) for row in rows]
    cells = [[_cell(value) for value in row] for row in values]
    numeric = [
        bool(values) and all(_is_number(row[i]) for row in values) for i in range(len(headers))
    ]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    left = [False] * len(headers)
    lines = [_line(headers, widths, left), _line(["-" * w for w in widths], widths, left)]
    lines.extend(_line(row, widths, numeric) for row in cells)
    return "\n".join(lines)


def previous_version(versions: Sequence[Mapping[str, Any]], current: str) -> str:
    """The most recent version created before `current`.

    Creation order is `created_at` when the server reports it, else the server's list order.
    """
    ordered = list(versions)
    if all("created_at" in info for info in ordered):
        ordered.sort(key=lambda info: float(info["created_at"]))
    names = [str(info["model_version"]) for info in ordered]
    if current not in names:
        raise ModelNotFound(f"Current version {current!r} is not among the registered versions")
    position = names.index(current)
    if position == 0:
        raise InvalidRequest(f"No version older than the current one ({current!r})")
    return names[position - 1]


def start(args: argparse.Namespace, settings: Settings) -> None:
    """Run a server in the foreground, or in the background with --detach."""
    if args.detach:
        launcher.start_detached(settings, ["--demo"] if args.demo else [], args.timeout, sys.stdout)
        return
    prepare_admin_token(settings, sys.stdout)
    pause_collector()  # while the server starts: ClipperServer.run resumes it
    # Before gRPC loads: the server forks only to exec workers, so gRPC's fork handlers
    # have nothing to do (and would log a line at every spawn).
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    try:
        server = importlib.import_module("clipper.server")
        server.serve(settings, demo=args.demo)
    finally:
        resume_collector()  # also when the server stops (or fails) before that


def stop(args: argparse.Namespace, settings: Settings) -> None:
    """Shut the server down and wait for it to exit."""
    stopped = launcher.stop_server(settings, timeout_s=args.timeout)
    print("Clipper server stopped" if stopped else "No Clipper server is running")


def status(args: argparse.Namespace, settings: Settings) -> None:
    """Print the server's status."""
    with admin_client(settings) as admin:
        report = admin.status()
    width = max(map(len, report), default=0)
    for key, value in report.items():
        print(f"{key:<{width}}  {_cell(value)}")
    print()
    replicas(args, settings)


def restart(args: argparse.Namespace, settings: Settings) -> None:
    """The rolling restart of the query frontends."""
    with admin_client(settings) as admin:
        rows = admin.restart_frontends()["frontends"]
    table = [(row["index"], row["pid"], row["alive"]) for row in rows]
    print(format_table(["index", "pid", "alive"], table))


def dashboard(args: argparse.Namespace, settings: Settings) -> None:
    """Print the dashboard's address with the admin token in its fragment; --open opens it."""
    from clipper.client import admin_token_source

    source = admin_token_source(settings)
    token = source() if callable(source) else source
    url = dashboard_url(settings.host, settings.admin_port, token, scheme(settings))
    print(url)
    if args.open:
        import webbrowser  # here: every other command, `start` among them, goes without it

        webbrowser.open(url)


def _as_json(args: argparse.Namespace, records: list[Any]) -> bool:
    """With --json: print the records as JSON (True: nothing else to print)."""
    if not getattr(args, "json", False):
        return False
    print(json.dumps(records, indent=2, default=str))
    return True


def apps(args: argparse.Namespace, settings: Settings) -> None:
    """List applications."""
    with admin_client(settings) as admin:
        infos = admin.get_all_applications(verbose=True)
    if _as_json(args, infos):
        return
    keys = ["name", "input_type", "default_output", "latency_slo_micros", "policy"]
    keys += ["linked_models", "pipeline"]
    rows = [[info.get(key) for key in keys] for info in infos]
    headers = ["NAME", "INPUT", "DEFAULT", "SLO_US", "POLICY", "MODELS", "PIPELINE"]
    print(format_table(headers, rows))


def models(args: argparse.Namespace, settings: Settings) -> None:
    """List model versions."""
    with admin_client(settings) as admin:
        infos = admin.get_all_models(verbose=True)
    if _as_json(args, infos):
        return
    keys = ["model_name", "model_version", "input_type", "is_current_version"]
    keys += ["num_replicas", "batch_size", "containerless"]
    headers = ["MODEL", "VERSION", "INPUT", "CURRENT", "REPLICAS", "BATCH", "CONTAINERLESS"]
    rows = [[info.get(key) for key in keys] for info in infos]
    for row, info in zip(rows, infos, strict=True):
        if info.get("cold"):  # scaled to zero: the next query starts a replica
            row[4] = f"{info.get('num_replicas')} (cold)"
    print(format_table(headers, rows))


def replicas(args: argparse.Namespace, settings: Settings) -> None:
    """List replicas."""
    with admin_client(settings) as admin:
        infos = admin.get_all_containers(verbose=True)
    if _as_json(args, infos):
        return
    keys = ["model_name", "model_version", "model_replica_id", "state", "pid", "connected"]
    headers = ["MODEL", "VERSION", "REPLICA", "STATE", "PID", "CONNECTED", "NODE"]
    rows = [[*(info.get(key) for key in keys), info.get("node")] for info in infos]
    print(format_table(headers, rows))
    reasons = [info for info in infos if info.get("reason")]
    if reasons:
        print()
    for info in reasons:
        replica = f"{info['model_name']}:{info['model_version']}:{info['model_replica_id']}"
        print(f"{replica} is {info.get('state')}: {info['reason']}")


def register_app(args: argparse.Namespace, settings: Settings) -> None:
    """Register an application."""
    with admin_client(settings) as admin:
        admin.add_app(args.name, args.input_type, args.default_output, args.slo_micros,
                      args.policy, policy_params(args.param),
                      show_model_errors=args.show_model_errors,
                      overload=args.overload, priority=args.priority)  # fmt: skip
    print(f"Registered app {args.name!r}: POST /{args.name}/predict")


def set_policy(args: argparse.Namespace, settings: Settings) -> None:
    """Set an app's selection policy and its parameters."""
    with admin_client(settings) as admin:
        info = admin.set_app_policy(args.app, args.policy, policy_params(args.param))
    params = json.dumps(info.get("policy_params") or {})
    print(f"App {args.app!r}: policy {info.get('policy')} {params}")


def set_pipeline(args: argparse.Namespace, settings: Settings) -> None:
    """Make an app a pipeline of models, or a plain app again with no models."""
    with admin_client(settings) as admin:
        admin.set_app_pipeline(args.app, args.models)
    steps = " -> ".join(args.models) or "none (plain app)"
    print(f"App {args.app!r}: pipeline {steps}")


def policy_params(pairs: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs as policy parameters; a VALUE that parses as JSON is that value
    (`epsilon=0.2`, `weights={"a": 9, "b": 1}`), else the string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidRequest(f"policy parameter {pair!r} is not KEY=VALUE")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def unregister_app(args: argparse.Namespace, settings: Settings) -> None:
    """Remove an application."""
    with admin_client(settings) as admin:
        admin.delete_app(args.name)
    print(f"Unregistered app {args.name!r}")


def deploy(args: argparse.Namespace, settings: Settings) -> None:
    """Deploy a new model version: a function from a Python file, or a model directory."""
    options: dict[str, Any] = {
        "batch_size": args.batch_size, "ready_timeout_s": args.timeout,
        "output_type": args.output_type, "task": args.task,
        "resources": _json_object(args.resources, "--resources"),
    }  # fmt: skip
    if args.rollout is not None:
        options["rollout"] = parse_plan(args.rollout) or True
    with admin_client(settings) as admin:
        if args.file is not None:
            name = args.target
            version, input_type = version_and_type(admin, name, args.version, args.input_type)
            info = deploy_function_file(
                admin, name, version, input_type, Path(args.file), args.function or "predict",
                environment=args.environment, pkgs=args.pkg, num_replicas=args.replicas,
                **options,
            )  # fmt: skip
        else:
            name, version, input_type, artifact = _directory_deploy(args, admin)
            info = admin.deploy_artifact(
                name, version, input_type, artifact, container_name="python-directory",
                num_replicas=args.replicas, progress=print_progress, **options,
            )  # fmt: skip
    print(f"Deployed {name}:{version} with {info.get('num_replicas', args.replicas)} replica(s)")
    if args.rollout is not None:
        print(f"Rolling {name}:{version} out: clipper rollout status {name}")


def _json_object(text: str | None, flag: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"{flag} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"{flag} must be a JSON object")
    return value


def _directory_deploy(args: argparse.Namespace, admin: AdminClient) -> tuple[str, str, str, bytes]:
    directory = Path(args.target)
    if not directory.is_dir():
        raise InvalidRequest(
            f"{args.target} is not a directory; deploy a function with NAME VERSION --file FILE"
        )
    name = args.name or model_name_of(directory.resolve().name)
    version, input_type = version_and_type(admin, name, args.version, args.input_type)
    metadata = directory_artifact(
        directory, function=args.function, environment=args.environment,
        pkgs_to_install=args.pkg,
    )  # fmt: skip
    return name, version, input_type, pack_directory(directory, metadata)


def link(args: argparse.Namespace, settings: Settings) -> None:
    """Link a model to an application."""
    with admin_client(settings) as admin:
        admin.add_model_links(args.app, [args.model])
    print(f"Linked model {args.model!r} to app {args.app!r}")


def unlink(args: argparse.Namespace, settings: Settings) -> None:
    """Unlink a model from an application."""
    with admin_client(settings) as admin:
        admin.delete_model_links(args.app, [args.model])
    print(f"Unlinked model {args.model!r} from app {args.app!r}")


def set_version(args: argparse.Namespace, settings: Settings) -> None:
    """Make a registered version current."""
    with admin_client(settings) as admin:
        admin.set_model_version(args.model, args.version)
    print(f"{args.model}: current version is now {args.version}")


def rollback(args: argparse.Namespace, settings: Settings) -> None:
    """Make the version registered before the current one current again."""
    with admin_client(settings) as admin:
        current = admin.get_current_model_version(args.model)
        infos = admin.get_all_models(verbose=True)
        versions = [info for info in infos if info.get("model_name") == args.model]
        target = previous_version(versions, current)
        admin.set_model_version(args.model, target)
    print(f"{args.model}: rolled back from version {current} to {target}")


def scale(args: argparse.Namespace, settings: Settings) -> None:
    """Set the number of replicas of a version (default: the current one)."""
    with admin_client(settings) as admin:
        info = admin.set_num_replicas(args.model, args.num_replicas, args.version)
        version = str(info.get("model_version", args.version))
        if args.num_replicas > 0:
            admin.wait_model_ready(args.model, version, args.timeout)
    print(f"{args.model}:{version} runs {args.num_replicas} replica(s)")


def autoscale(args: argparse.Namespace, settings: Settings) -> None:
    """Autoscale a version (default: the current one) between --min and --max, or --off."""
    config = None if args.off else _autoscaling_settings(args)
    with admin_client(settings) as admin:
        info = admin.set_autoscaling(args.model, config, args.version)
    name = f"{args.model}:{info.get('model_version', args.version)}"
    if config is None:
        print(f"{name} is no longer autoscaled; it runs {info.get('num_replicas')} replica(s)")
    else:
        print(f"{name} is autoscaled between {args.min_replicas} and {args.max_replicas} "
              f"replicas (now {info.get('num_replicas')})")  # fmt: skip


def _autoscaling_settings(args: argparse.Namespace) -> dict[str, object]:
    if args.max_replicas is None:
        raise InvalidRequest("autoscale needs --max N (or --off)")
    config: dict[str, object] = {"min_replicas": args.min_replicas,
                                 "max_replicas": args.max_replicas}  # fmt: skip
    for setting in args.setting:
        name, equals, value = setting.partition("=")
        try:
            config[name.strip()] = json.loads(value)
        except ValueError:
            equals = ""
        if not equals:
            raise InvalidRequest(f"--setting takes NAME=NUMBER, got {setting!r}")
    return config


def predict(args: argparse.Namespace, settings: Settings) -> int | None:
    """Send one query (or a batch with --batch) and print the JSON reply."""
    try:
        value = json.loads(args.json_input)
    except ValueError as exc:
        raise InvalidRequest(f"JSON_INPUT is not valid JSON: {exc}") from exc
    if args.batch and not isinstance(value, list):
        raise InvalidRequest("With --batch, JSON_INPUT must be a JSON list")
    with query_client(settings, getattr(args, "token", None)) as client:
        if args.batch:
            reply = client.predict(args.app, input_batch=value, version=args.version)
        else:
            reply = client.predict(args.app, input=value, version=args.version)
    print(json.dumps(reply))
    answers = reply.get("batch_predictions", [reply])
    if any(answer.get("default") for answer in answers):
        return DEFAULT_ANSWER_EXIT_CODE
    return None


def logs(args: argparse.Namespace, settings: Settings) -> None:
    """Print the server's and replicas' logs (--model: one model's; --follow: keep
    printing new lines until Ctrl-C), or write them to files with --out. Logs are read a
    page at a time from where the last read ended, never whole in one reply."""
    with admin_client(settings) as admin:
        if args.out is not None:
            for path in admin.save_logs(Path(args.out)):
                print(path)
            return
        printed: dict[str, int] = {}  # log name -> the offset read up to
        model = getattr(args, "model", None)
        while True:
            for entry in admin.log_page(max_bytes=4):
                name = str(entry["name"])
                if model is None or name.startswith(f"{model}-"):
                    _print_new_text(admin, name, int(entry["size"]), printed)
            if not getattr(args, "follow", False):
                return
            time.sleep(LOG_FOLLOW_INTERVAL_S)


def _print_new_text(admin: AdminClient, name: str, size: int, printed: dict[str, int]) -> None:
    offset = printed.get(name, 0)
    if size < offset:  # rotated: start over
        offset = 0
    if size == offset:
        return
    text = []
    for page in admin.log_pages(name, offset):
        text.append(str(page["content"]))
        printed[name] = int(page["next_offset"])
    new = "".join(text)
    if new.strip():
        print(f"==> {name} <==")
        print(new.rstrip("\n"), flush=True)


def token(args: argparse.Namespace, settings: Settings) -> None:
    """`show`: print the admin token clients use; `rotate`: replace the one in the state
    directory (mode 0600). A running server checks the file at every request, so the old
    token stops working at once."""
    state_dir = settings.resolved_state_dir()
    if args.action == "rotate":
        new = write_admin_token(state_dir)
        print(f"New admin token written to {admin_token_path(state_dir)}:", file=sys.stderr)
        print(new)
        return
    current = settings.admin_token.get_secret_value() if settings.admin_token else None
    current = current or read_admin_token(state_dir)
    if current is None:
        raise InvalidRequest(f"No admin token in {admin_token_path(state_dir)} (start the server)")
    print(current)


COMMANDS: dict[str, Command] = {
    "start": start,
    "stop": stop,
    "status": status,
    "restart": restart,
    "apps": apps,
    "models": models,
    "replicas": replicas,
    "register-app": register_app,
    "set-policy": set_policy,
    "set-pipeline": set_pipeline,
    "unregister-app": unregister_app,
    "deploy": deploy,
    "link": link,
    "unlink": unlink,
    "set-version": set_version,
    "rollback": rollback,
    "scale": scale,
    "autoscale": autoscale,
    "serve": serve.serve,
    "predict": predict,
    "logs": logs,
    "dashboard": dashboard,
    "token": token,
    "rollout": rollout,
    **change_commands.COMMANDS,
}
"""Every command by its name on the command line."""


LOG_FOLLOW_INTERVAL_S = 1.0


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_cell, value)) or "-"
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    padded = [
        cell.rjust(width) if align_right else cell.ljust(width)
        for cell, width, align_right in zip(cells, widths, right, strict=True)
    ]
    return "  ".join(padded).rstrip()
