"""`clipper serve FILE[:FUNCTION]`: the one-command dev loop.

Starts a detached server when none answers, registers an app and deploys the file's
function (or class) as a model of the same name, links them and prints the curl line that
queries it. With `--reload` it then watches the file and deploys the next version at each
change. The name is the file's stem, made a valid name (`my_model.py` -> `my-model`;
`--name` chooses another), whatever the function is: the app stays one across edits and
functions. Every run deploys the next version, so running it again never fails on a clash.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clipper.cli import launcher
from clipper.cli.deploying import deploy_function_file, model_name_of, version_and_type
from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError
from clipper.security import scheme

if TYPE_CHECKING:
    from clipper.client import AdminClient

__all__ = [
    "POLL_INTERVAL_S",
    "FileStamp",
    "ServeTarget",
    "add_serve_command",
    "curl_line",
    "serve",
    "watch",
]

POLL_INTERVAL_S = 0.5
"""How often `--reload` looks at the file."""

_EXAMPLE_INPUTS: Mapping[str, object] = {
    "doubles": [1.0, 2.0, 3.0], "floats": [1.0, 2.0, 3.0], "ints": [1, 2, 3],
    "integers": [1, 2, 3], "strings": "hello", "bytes": "aGVsbG8=",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServeTarget:
    """What `FILE[:FUNCTION]` names: the file, the function in it, and the model's name."""

    path: Path
    function: str
    name: str

    @classmethod
    def parse(cls, text: str, name: str | None = None) -> ServeTarget:
        """`model.py` (function `predict`) or `model.py:Model`; the name defaults to the
        file's stem made a valid name."""
        file, _, function = text.partition(":")
        path = Path(file)
        return cls(path, function or "predict", name or model_name_of(path.stem))


def serve(args: argparse.Namespace, settings: Settings) -> int | None:
    """Start a server if none answers, deploy the file's function as app and model, print
    how to query it; with --reload, deploy again at every change until Ctrl-C."""
    from clipper.client import AdminClient  # the clients (httpx) load on first use

    target = ServeTarget.parse(args.target, args.name)
    if not launcher.answers_ping(settings):
        launcher.start_detached(settings, [], args.timeout, sys.stdout)
        print("  (`clipper stop` with the same cluster flags stops it)", flush=True)
    with AdminClient.from_settings(settings) as admin:
        version, input_type = _deploy(admin, target, args)
        admin.add_app(target.name, input_type, args.default_output, args.slo_micros)
        admin.add_model_links(target.name, [target.name])
        print(f"Serving {target.path} ({target.function}) as app and model {target.name!r}, "
              f"version {version}. Query it with:", flush=True)  # fmt: skip
        print(f"  {curl_line(settings, target.name, input_type)}", flush=True)
        if not args.reload:
            return None
        print(f"Watching {target.path} for changes (Ctrl-C stops watching; the server keeps "
              "running)", flush=True)  # fmt: skip
        try:
            watch(target.path, lambda: _redeploy(admin, target, args))
        except KeyboardInterrupt:
            print(f"\nStopped watching {target.path}; the server keeps serving "
                  f"{target.name!r}", flush=True)  # fmt: skip
    return None


def _deploy(admin: AdminClient, target: ServeTarget, args: argparse.Namespace) -> tuple[str, str]:
    """Deploy the next version of the target's model; (version, input type)."""
    version, input_type = version_and_type(admin, target.name, None, args.input_type)
    deploy_function_file(
        admin, target.name, version, input_type, target.path, target.function,
        num_replicas=args.replicas, ready_timeout_s=args.timeout,
    )  # fmt: skip
    return version, input_type


def _redeploy(admin: AdminClient, target: ServeTarget, args: argparse.Namespace) -> None:
    """Deploy the changed file; on failure print the error's first line and keep the
    version that serves now (a deploy moves traffic only once the new version is ready)."""
    print(f"{target.path} changed: deploying the next version of {target.name!r}", flush=True)
    try:
        version, _ = _deploy(admin, target, args)
    except Exception as exc:  # the watch outlives any one deploy, whatever its error
        first_line = (str(exc).splitlines() or [""])[0]
        if not isinstance(exc, ClipperError):
            first_line = f"{type(exc).__name__}: {first_line}"
        print(f"error: {first_line}", file=sys.stderr, flush=True)
        print(f"  the version serving before keeps serving {target.name!r}", flush=True)
        return
    print(f"Serving {target.name}:{version}", flush=True)


def curl_line(settings: Settings, app: str, input_type: str) -> str:
    """A curl command that sends one example input of `input_type` to `app`."""
    body = json.dumps({"input": _EXAMPLE_INPUTS.get(input_type, [1.0])})
    url = f"{scheme(settings)}://{settings.host}:{settings.query_port}/{app}/predict"
    return f"curl -X POST -H 'Content-Type: application/json' -d {shlex.quote(body)} {url}"


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What tells one version of a file from the next: its modification time and size."""

    mtime_ns: int
    size_bytes: int

    @classmethod
    def of(cls, path: Path) -> FileStamp | None:
        """The file's stamp, or None while it does not exist (an editor replacing it)."""
        try:
            status = os.stat(path)
        except OSError:
            return None
        return cls(status.st_mtime_ns, status.st_size)


def watch(
    path: Path,
    on_change: Callable[[], None],
    *,
    interval_s: float = POLL_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
    max_polls: int | None = None,
) -> None:
    """Call `on_change` each time `path` has changed and then stayed the same for one
    poll (a save written in several steps is deployed once, whole); runs until
    KeyboardInterrupt, or for `max_polls` polls.

    Polling the stamp every half second, not a file-events library (watchfiles, watchdog):
    one file needs no events, it is dependency-free, and it works the same on every
    platform and file system (network and container mounts deliver no inotify events);
    a deploy takes seconds, so half a second of latency is not felt.
    """
    attempted = seen = FileStamp.of(path)
    polls = 0
    while max_polls is None or polls < max_polls:
        sleep(interval_s)
        polls += 1
        stamp = FileStamp.of(path)
        if stamp is not None and stamp == seen and stamp != attempted:
            attempted = stamp
            on_change()
        seen = stamp


def add_serve_command(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The `serve` command's arguments."""
    command = add(
        "serve",
        "deploy FILE[:FUNCTION] (default function: predict; a class works too) as app and "
        "model named after the file (my_model.py -> my-model), starting a server if none "
        "runs, and print the curl line that queries it; --reload deploys each change",
    )
    command.add_argument(
        "target", metavar="FILE[:FUNCTION]",
        help="the Python file and the function or class in it (default: predict)",
    )  # fmt: skip
    command.add_argument("--input-type", help="bytes|ints|floats|doubles|strings (default: "
                         "the model's registered one)")  # fmt: skip
    command.add_argument("--name", help="app and model name (default: the file's stem)")
    command.add_argument("--reload", action="store_true",
                         help="watch FILE and deploy the next version at every change")  # fmt: skip
    command.add_argument("--replicas", type=int,
                         help="replicas (default: as many as the current version has)")  # fmt: skip
    command.add_argument("--default-output", default="None",
                         help="the app's answer when there is no prediction")  # fmt: skip
    command.add_argument("--slo-micros", type=int, default=1_000_000,
                         help="the app's latency objective (default 1 s)")  # fmt: skip
    command.add_argument("--timeout", type=float, default=60.0, help="how long to wait for "
                         "the server and for the replicas (s, default 60)")  # fmt: skip
