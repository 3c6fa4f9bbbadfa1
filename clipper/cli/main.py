"""The `clipper` command line: run a server and manage a cluster through its admin API.

Every command takes the cluster flags (`--cluster-name`, `--host`, `--query-port`,
`--admin-port`, `--rpc-port`, `--grpc-port`, `--state-dir`, `--config`), before or after
the command's name; a setting's flag wins over its `CLIPPER_<FIELD>` environment variable,
which wins over the config file (`--config FILE` or `CLIPPER_CONFIG`, TOML: any Settings
field as a key), which wins over the `Settings` default.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clipper.cli import commands as cli_commands
from clipper.cli.config_file import load_settings
from clipper.cli.rollout_commands import add_rollout_command
from clipper.cli.serve import add_serve_command
from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError, ServerUnreachable, Unauthorized
from clipper.core.generation import TASKS

__all__ = ["build_parser", "main", "settings_from_args"]

_Adder = Callable[[str, str], argparse.ArgumentParser]
_SETTINGS_FLAGS = (
    "cluster_name", "host", "query_port", "admin_port", "rpc_port", "grpc_port", "state_dir",
)  # fmt: skip
_START_FLAGS = (
    "placement", "ray_address", "rpc_host", "rpc_advertise_host", "log_level", "frontends",
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `clipper` command; returns the exit status (1 with `error: ...` on failure)."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ClipperError as exc:
        return _report(exc, [])
    try:
        status = cli_commands.COMMANDS[args.command](args, settings)
        sys.stdout.flush()
    except ClipperError as exc:
        return _report(exc, _hints(exc, args.command, settings))
    except BrokenPipeError:  # `clipper logs | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 0
    except KeyboardInterrupt:
        return 130
    return status or 0


def _report(exc: ClipperError, hints: list[str]) -> int:
    """Print `error: <first line>`, the rest of the message and the hints; exit status 1."""
    first_line, *details = str(exc).splitlines() or [type(exc).__name__]
    print(f"error: {first_line}", file=sys.stderr)
    for line in [*details, *hints]:
        print(line, file=sys.stderr)
    return 1


def _hints(exc: ClipperError, command: str, settings: Settings) -> list[str]:
    """What to do next, for the errors a new user meets first."""
    if isinstance(exc, ServerUnreachable):
        return [
            f"hint: no server answers for cluster {settings.cluster_name!r} at "
            f"{settings.host} (admin port {settings.admin_port}, query port "
            f"{settings.query_port}); start one with `clipper start`, or point at it with "
            "--admin-port/--query-port or CLIPPER_ADMIN_PORT/CLIPPER_QUERY_PORT"
        ]
    if isinstance(exc, Unauthorized) and command == "predict":
        return ["hint: this app takes queries only with a query token: give it with --token"]
    if isinstance(exc, Unauthorized):
        return [
            "hint: the admin API needs the cluster's token: `clipper token show` prints it "
            "(the CLI reads it from the state directory, or from CLIPPER_ADMIN_TOKEN)"
        ]
    return []


def _version() -> str:
    """The installed distribution's version (the source tree's, when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clipper-serving")
    except PackageNotFoundError:
        return "unknown (not installed)"


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the flags, over the environment, over the config file (`--config`,
    else `CLIPPER_CONFIG`), over the defaults; InvalidSettings names what is wrong."""
    flags: dict[str, Any] = {}
    for field in (*_SETTINGS_FLAGS, *_START_FLAGS):  # only `start` has the latter
        if getattr(args, field, None) is not None:
            flags[field] = getattr(args, field)
    config = getattr(args, "config", None)
    return load_settings(flags, Path(config) if config is not None else None)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="clipper", description=__doc__)
    parser.add_argument("--version", action="version", version=f"clipper {_version()}")
    _add_cluster_flags(parser, hidden=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # After COMMAND, the same flags, hidden from its help. SUPPRESS: a flag not given there
    # sets nothing, so it leaves the value given before COMMAND (argparse copies every
    # attribute of the subcommand's namespace, defaults included, over the top level's).
    cluster = argparse.ArgumentParser(add_help=False)
    _add_cluster_flags(cluster, hidden=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help_text, description=help_text, parents=[cluster], epilog=_CLUSTER_NOTE
        )

    _add_server_commands(add)
    _add_listing_commands(add)
    _add_app_commands(add)
    _add_model_commands(add)
    add_serve_command(add)
    _add_change_commands(add)
    _add_query_commands(add)
    _add_token_commands(add)
    add_rollout_command(add)
    return parser


_CLUSTER_TITLE = (
    "cluster flags, before or after COMMAND (default: CLIPPER_<FIELD>, else the config file, "
    "else the Settings default)"
)
_CLUSTER_NOTE = "The cluster flags (--admin-port, --state-dir, ...) are in `clipper --help`."


def _add_cluster_flags(parser: argparse.ArgumentParser, *, hidden: bool) -> None:
    """The cluster flags: in a group with help and default None at the top level; `hidden`
    (after COMMAND) without help and with SUPPRESS defaults."""
    flags: list[tuple[str, type, str]] = [
        ("--cluster-name", str, "name of the cluster"),
        ("--host", str, "address of the query and admin APIs"),
        ("--query-port", int, "port of the query API"),
        ("--admin-port", int, "port of the admin API"),
        ("--rpc-port", int, "port of the worker RPC listener"),
        ("--grpc-port", int, "port of the V2 (KServe) gRPC API"),
        ("--state-dir", str, "registry, artifacts and logs of the cluster"),
        (
            "--config",
            str,
            "a TOML file of settings (any Settings field; default: "
            "CLIPPER_CONFIG); flags and CLIPPER_<FIELD> variables win over it",
        ),
    ]
    target = parser if hidden else parser.add_argument_group(_CLUSTER_TITLE)
    for flag, kind, help_text in flags:
        if hidden:
            target.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        else:
            target.add_argument(flag, type=kind, help=help_text)


def _add_server_commands(add: _Adder) -> None:
    start = add("start", "run a Clipper server (in the foreground unless --detach)")
    start.add_argument("--detach", action="store_true", help="run in the background")
    start.add_argument("--demo", action="store_true", help="register a demo app and model")
    _timeout(start, 30.0, "how long --detach waits for the server to answer")
    start.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
        help="the server's log level (CLIPPER_LOG_LEVEL)",
    )  # fmt: skip
    start.add_argument(
        "--frontends", type=int, metavar="N",
        help="query-frontend processes sharing the query ports (CLIPPER_FRONTENDS; default: "
        "1 on up to 2 cores, else one per 4 cores, at most 8)",
    )  # fmt: skip
    placement = start.add_argument_group("placement (default: CLIPPER_<FIELD> or local)")
    placement.add_argument("--placement", choices=["local", "ray"], help="where replicas run")
    placement.add_argument(
        "--ray-address", help="Ray cluster for --placement ray: auto, host:port, ray://..., local"
    )
    placement.add_argument("--rpc-host", help="address the worker RPC listener binds to")
    placement.add_argument(
        "--rpc-advertise-host", help="address workers dial (one workers on other machines reach)"
    )
    _timeout(add("stop", "shut the server down"), 30.0, "grace period before SIGKILL")
    add("status", "show the server's status")
    restart = add("restart", "replace the query frontends one at a time, no query failing")
    restart.add_argument(
        "--frontends", action="store_true", required=True,
        help="the query-frontend processes (a server of several; the only part restartable)",
    )  # fmt: skip
    dashboard = add("dashboard", "print the web dashboard's address, with the admin token")
    dashboard.add_argument("--open", action="store_true", help="also open it in a web browser")
    logs = add("logs", "show the server's and replicas' logs")
    logs.add_argument("--out", metavar="DIR", help="write one file per log into DIR")
    logs.add_argument("--model", help="only the logs of this model's replicas")
    logs.add_argument("--follow", action="store_true", help="keep printing new lines")


def _add_listing_commands(add: _Adder) -> None:
    for name, what in (("apps", "applications"), ("models", "model versions"),
                       ("replicas", "replicas")):  # fmt: skip
        listing = add(name, f"list {what}")
        listing.add_argument("--json", action="store_true",
                             help="print the admin API's records as JSON, not a table")  # fmt: skip


def _add_app_commands(add: _Adder) -> None:
    register = add("register-app", "register an application")
    register.add_argument("name", help="the application's name (its URL: /NAME/predict)")
    register.add_argument("--input-type", required=True, help="bytes|ints|floats|doubles|strings")
    register.add_argument("--default-output", default="None", help="answer when no prediction")
    register.add_argument("--slo-micros", type=int, default=100_000, help="latency objective")
    register.add_argument("--policy", default="single", help="selection policy (default single)")
    register.add_argument("--overload", choices=("default", "reject"), default="default",
                          help="what a query refused by admission control gets: the default "
                          "output, or 429 / RESOURCE_EXHAUSTED")  # fmt: skip
    register.add_argument("--priority", type=int, default=0,
                          help="priority class, 0 (default) to 9: under contention higher "
                          "classes are served first and shed last")  # fmt: skip
    register.add_argument("--show-model-errors", action="store_true",
                          help="send models' exception text to clients (development)")  # fmt: skip
    _policy_param_flag(register)
    set_policy = add("set-policy", "set an app's selection policy: single, ab, epsilon_greedy, "
                     "thompson, exp3, exp4 or shadow")  # fmt: skip
    set_policy.add_argument("app", help="the application")
    set_policy.add_argument("policy", help="the policy's name")
    _policy_param_flag(set_policy)
    set_pipeline = add("set-pipeline", "make an app a pipeline of models (none: a plain app)")
    set_pipeline.add_argument("app", help="the application")
    set_pipeline.add_argument(
        "models", nargs="*", metavar="MODEL", help="the models in order, each one's output the "
        "next one's input",
    )  # fmt: skip
    unregister = add("unregister-app", "remove an application (its models stay)")
    unregister.add_argument("name", help="the application")
    for name, help_text in (("link", "link a model to an app"), ("unlink", "unlink a model")):
        command = add(name, help_text)
        command.add_argument("app", help="the application")
        command.add_argument("model", help="the model (all its versions)")


def _add_model_commands(add: _Adder) -> None:
    deploy = add(
        "deploy",
        "deploy a new model version: NAME [VERSION] --file FILE (a function in a Python "
        "file), or DIR [VERSION] (a model directory with predict.py and requirements.txt); "
        "VERSION defaults to the next integer one",
    )
    deploy.add_argument("target", metavar="NAME|DIR", help="model name, or model directory")
    deploy.add_argument("version", nargs="?", help="version (default: the next integer one)")
    deploy.add_argument("--file", help="Python file defining the function")
    deploy.add_argument("--function", help="function (or class) to serve; default: predict")
    deploy.add_argument("--name", help="model name of a directory (default: its name)")
    deploy.add_argument("--input-type", help="bytes|ints|floats|doubles|strings (default for "
                        "a directory: the model's registered type)")  # fmt: skip
    deploy.add_argument("--environment", help="'capture', or a requirements file "
                        "(directory default: its requirements.txt, else capture)")  # fmt: skip
    deploy.add_argument("--pkg", action="append", default=[], metavar="REQUIREMENT",
                        help="add a package to the environment (repeatable)")  # fmt: skip
    deploy.add_argument("--replicas", type=int, help="number of replicas (default: as many as "
                        "the current version has, 1 for a new model)")  # fmt: skip
    deploy.add_argument("--batch-size", type=int, default=-1, help="-1: adaptive batching")
    deploy.add_argument("--output-type", help="type of the outputs, as the next pipeline step's "
                        "input (bytes|ints|floats|doubles|strings)")  # fmt: skip
    deploy.add_argument("--task", choices=TASKS, help="serve it through the OpenAI-compatible "
                        "API (/v1/...; a strings model)")  # fmt: skip
    deploy.add_argument("--resources", metavar="JSON", help='what each replica asks of its Ray '
                        'node, e.g. \'{"num_cpus": 1, "num_gpus": 0.5}\'')  # fmt: skip
    deploy.add_argument("--rollout", nargs="?", const="{}", metavar="JSON",
                        help="roll it out against the current version step by step instead "
                        "of making it current (optionally with a plan; README: Canary "
                        "rollouts)")  # fmt: skip
    _timeout(deploy, 60.0, "how long to wait for the replicas to be ready")
    set_version = add("set-version", "make a registered version current")
    set_version.add_argument("model", help="the model")
    set_version.add_argument("version", help="the registered version to make current")
    rollback = add("rollback", "make the version before the current one current")
    rollback.add_argument("model", help="the model")
    scale = add("scale", "set the number of replicas of a version (waits until they are ready)")
    scale.add_argument("model", help="the model to scale")
    scale.add_argument("num_replicas", type=int, metavar="N",
                       help="how many replicas to run (0 stops them all)")  # fmt: skip
    scale.add_argument("--version", help="the version to scale (default: the current one)")
    _timeout(scale, 60.0, "how long to wait for the replicas to be ready")
    autoscale = add("autoscale", "scale a version against its SLO (README: Autoscaling)")
    autoscale.add_argument("model", help="the model to autoscale")
    autoscale.add_argument("--version", help="default: the current version")
    autoscale.add_argument("--min", type=int, default=1, dest="min_replicas", metavar="N",
                           help="fewest replicas (default 1; 0: none when idle)")  # fmt: skip
    autoscale.add_argument("--max", type=int, dest="max_replicas", metavar="N",
                           help="most replicas (required unless --off)")  # fmt: skip
    autoscale.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                           help="another setting, e.g. downscale_delay_s=120")  # fmt: skip
    autoscale.add_argument("--off", action="store_true", help="stop autoscaling the version")


def _add_change_commands(add: _Adder) -> None:
    update = add("update-app", "change an app's latency SLO, default output and priority (an "
                 "extension: "
                 "Clipper has no such operation); what is not given stays")  # fmt: skip
    update.add_argument("name", help="the application")
    update.add_argument("--slo-micros", type=int, help="new latency objective (microseconds)")
    update.add_argument("--default-output", help="new answer when no prediction is in time")
    update.add_argument("--priority", type=int, help="new priority class, 0 to 9")
    cache = add("set-cache", "turn the prediction cache of an app or of a model on or off "
                "(a query uses it only where both its app and its model have it on)")  # fmt: skip
    cache.add_argument("state", choices=["on", "off"], help="on or off")
    target = cache.add_mutually_exclusive_group(required=True)
    target.add_argument("--app", help="the application whose cache to set")
    target.add_argument("--model", help="the model (every version) whose cache to set")
    batching = add("set-batching", "change a model version's batching; what is not given stays")
    batching.add_argument("model", help="the model")
    batching.add_argument("--version", help="default: the current version")
    batching.add_argument(
        "--batch-size",
        type=int,
        help="most inputs in a batch (-1: adaptive, sized against the SLO)",
    )
    batching.add_argument(
        "--wait-timeout-micros", type=int, help="how long a batch may wait to fill under light load"
    )
    batching.add_argument("--max-in-flight", type=int,
                          help="how many batches one replica may hold at once")  # fmt: skip
    payloads = add("set-payload-log", "record each sampled query of an app and its feedback "
                   "(or each query a model version answered: --model) in a sink (README's "
                   "\"Payload logging\"), or stop (--off)")  # fmt: skip
    payloads.add_argument("app", nargs="?", help="the application (or give --model)")
    payloads.add_argument("--model", help="a model: log the queries its version answered")
    payloads.add_argument("--version", help="with --model: the version (default: current)")
    payloads.add_argument("--sink", default="jsonl", help="jsonl (<state_dir>/payloads/APP.jsonl, "
                          "the default), cloudevents:URL, or redis://HOST:PORT/STREAM")  # fmt: skip
    payloads.add_argument("--sample", type=float, default=1.0,
                          help="share of queries recorded, 0 to 1 (default 1)")  # fmt: skip
    payloads.add_argument("--fields", nargs="+", metavar="FIELD",
                          help="keep only these fields (kind and query_id always stay): time "
                          "app models input output latency_ms default explanation "
                          "feedback")  # fmt: skip
    payloads.add_argument("--off", action="store_true", help="stop recording its queries")
    delete = add("delete-version", "stop a model version's replicas (drained first) and "
                 "unregister it")  # fmt: skip
    delete.add_argument("model", help="the model")
    delete.add_argument("version", help="the version to delete")


def _add_query_commands(add: _Adder) -> None:
    predict = add("predict", "query an application and print the JSON reply (exit status "
                  "2 when an answer is the app's default output)")  # fmt: skip
    predict.add_argument("app", help="the application to query")
    predict.add_argument("json_input", metavar="JSON_INPUT",
                         help='the input as JSON in the app\'s input type, e.g. "[1.0, 2.0]" '
                         'for doubles, \'"text"\' for strings')  # fmt: skip
    predict.add_argument("--batch", action="store_true",
                         help="JSON_INPUT is a JSON list of inputs, answered together")  # fmt: skip
    predict.add_argument("--version", help="ask this model version, not the current one")
    predict.add_argument("--token", help="query token, for apps that require one")


def _add_token_commands(add: _Adder) -> None:
    token = add(
        "token",
        "the admin token: 'show' prints it, 'rotate' writes a new one to "
        "<state_dir>/admin_token, which the running server reads at its next request",
    )
    token.add_argument("action", choices=["show", "rotate"], help="show or rotate")


def _policy_param_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="a policy parameter, VALUE as JSON when it parses (repeatable)",
    )  # fmt: skip


def _timeout(command: argparse.ArgumentParser, default_s: float, help_text: str) -> None:
    command.add_argument(
        "--timeout", type=float, default=default_s, help=f"{help_text} (s, default {default_s:g})"
    )
