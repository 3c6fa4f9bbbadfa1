"""The `clipper` command line: run a server and manage a cluster through its admin API.

Every command takes the cluster flags (`--cluster-name`, `--host`, `--query-port`,
`--admin-port`, `--rpc-port`, `--state-dir`); a flag left out falls back to its
`CLIPPER_<FIELD>` environment variable, then to the `Settings` default.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from clipper.cli import commands as cli_commands
from clipper.cli.serve import add_serve_command
from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError, ServerUnreachable, Unauthorized

__all__ = ["build_parser", "main", "settings_from_args"]

_Adder = Callable[[str, str], argparse.ArgumentParser]
_SETTINGS_FLAGS = (
    "cluster_name", "host", "query_port", "admin_port", "rpc_port", "grpc_port", "state_dir",
)  # fmt: skip
_START_FLAGS = ("placement", "ray_address", "rpc_host", "rpc_advertise_host", "log_level")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `clipper` command; returns the exit status (1 with `error: ...` on failure)."""
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    try:
        status = cli_commands.COMMANDS[args.command](args, settings)
        sys.stdout.flush()
    except ClipperError as exc:
        first_line, *details = str(exc).splitlines() or [type(exc).__name__]
        print(f"error: {first_line}", file=sys.stderr)
        for line in [*details, *_hints(exc, args.command, settings)]:
            print(line, file=sys.stderr)
        return 1
    except BrokenPipeError:  # `clipper logs | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 0
    except KeyboardInterrupt:
        return 130
    return status or 0


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
    """Settings from the cluster flags, over the environment, over the defaults."""
    overrides: dict[str, Any] = {
        field: getattr(args, field) for field in _SETTINGS_FLAGS if getattr(args, field) is not None
    }
    for field in _START_FLAGS:  # only `start` has these
        if getattr(args, field, None) is not None:
            overrides[field] = getattr(args, field)
    return Settings(**overrides)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="clipper", description=__doc__)
    parser.add_argument("--version", action="version", version=f"clipper {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cluster = _cluster_flags()

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, parents=[cluster])

    _add_server_commands(add)
    _add_listing_commands(add)
    _add_app_commands(add)
    _add_model_commands(add)
    add_serve_command(add)
    _add_query_commands(add)
    _add_token_commands(add)
    return parser


def _cluster_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("cluster (default: CLIPPER_<FIELD> or the Settings default)")
    group.add_argument("--cluster-name", help="name of the cluster")
    group.add_argument("--host", help="address of the query and admin APIs")
    group.add_argument("--query-port", type=int, help="port of the query API")
    group.add_argument("--admin-port", type=int, help="port of the admin API")
    group.add_argument("--rpc-port", type=int, help="port of the worker RPC listener")
    group.add_argument("--grpc-port", type=int, help="port of the V2 (KServe) gRPC API")
    group.add_argument("--state-dir", help="registry, artifacts and logs of the cluster")
    return flags


def _add_server_commands(add: _Adder) -> None:
    start = add("start", "run a Clipper server (in the foreground unless --detach)")
    start.add_argument("--detach", action="store_true", help="run in the background")
    start.add_argument("--demo", action="store_true", help="register a demo app and model")
    _timeout(start, 30.0, "how long --detach waits for the server to answer")
    start.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
        help="the server's log level (CLIPPER_LOG_LEVEL)",
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
    register.add_argument("name")
    register.add_argument("--input-type", required=True, help="bytes|ints|floats|doubles|strings")
    register.add_argument("--default-output", default="None", help="answer when no prediction")
    register.add_argument("--slo-micros", type=int, default=100_000, help="latency objective")
    register.add_argument("--policy", default="single", help="selection policy (default single)")
    register.add_argument("--overload", choices=("default", "reject"), default="default",
                          help="what a query refused by admission control gets: the default "
                          "output, or 429 / RESOURCE_EXHAUSTED")  # fmt: skip
    register.add_argument("--show-model-errors", action="store_true",
                          help="send models' exception text to clients (development)")  # fmt: skip
    _policy_param_flag(register)
    set_policy = add("set-policy", "set an app's selection policy: single, ab, epsilon_greedy, "
                     "thompson, exp3, exp4 or shadow")  # fmt: skip
    set_policy.add_argument("app")
    set_policy.add_argument("policy")
    _policy_param_flag(set_policy)
    set_pipeline = add("set-pipeline", "make an app a pipeline of models (none: a plain app)")
    set_pipeline.add_argument("app")
    set_pipeline.add_argument("models", nargs="*", metavar="MODEL")
    add("unregister-app", "remove an application (its models stay)").add_argument("name")
    for name, help_text in (("link", "link a model to an app"), ("unlink", "unlink a model")):
        command = add(name, help_text)
        command.add_argument("app")
        command.add_argument("model")


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
    deploy.add_argument("--resources", metavar="JSON", help='what each replica asks of its Ray '
                        'node, e.g. \'{"num_cpus": 1, "num_gpus": 0.5}\'')  # fmt: skip
    _timeout(deploy, 60.0, "how long to wait for the replicas to be ready")
    set_version = add("set-version", "make a registered version current")
    set_version.add_argument("model")
    set_version.add_argument("version")
    add("rollback", "make the version before the current one current").add_argument("model")
    scale = add("scale", "set the number of replicas of a version")
    scale.add_argument("model")
    scale.add_argument("num_replicas", type=int, metavar="N")
    scale.add_argument("--version", help="default: the current version")
    _timeout(scale, 60.0, "how long to wait for the replicas to be ready")


def _add_query_commands(add: _Adder) -> None:
    predict = add("predict", "query an application and print the JSON reply")
    predict.add_argument("app")
    predict.add_argument("json_input", metavar="JSON_INPUT", help='e.g. "[1.0, 2.0]"')
    predict.add_argument("--batch", action="store_true", help="JSON_INPUT is a list of inputs")
    predict.add_argument("--version", help="ask for this model version")
    predict.add_argument("--token", help="query token, for apps that require one")


def _add_token_commands(add: _Adder) -> None:
    token = add(
        "token",
        "the admin token: 'show' prints it, 'rotate' writes a new one to "
        "<state_dir>/admin_token, which the running server reads at its next request",
    )
    token.add_argument("action", choices=["show", "rotate"])


def _policy_param_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="a policy parameter, VALUE as JSON when it parses (repeatable)",
    )  # fmt: skip


def _timeout(command: argparse.ArgumentParser, default_s: float, help_text: str) -> None:
    command.add_argument(
        "--timeout", type=float, default=default_s, help=f"{help_text} (s, default {default_s:g})"
    )
