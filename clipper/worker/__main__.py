"""`python -m clipper.worker`: one model replica."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import resource
import signal
import sys
from pathlib import Path

from clipper.artifacts.loader import load_model
from clipper.core.process_memory import freeze_startup_objects
from clipper.core.resources import ReplicaLimits
from clipper.core.types import parse_input_type
from clipper.rpc.fanout import TICKET_SEPARATOR, frontend_ticket
from clipper.rpc.secret import SECRET_ENV
from clipper.worker.connection import RpcConnection, WorkerConnection
from clipper.worker.credential_handover import CREDENTIAL_FD_FLAG, read_credential
from clipper.worker.fanout import FrontendLinks
from clipper.worker.output_log import capture_output
from clipper.worker.rlimits import MEMORY_LIMIT_EXCEEDED, MEMORY_LIMIT_EXIT_CODE, apply_limits
from clipper.worker.serve import ReplicaSpec, serve

_PR_SET_PDEATHSIG = 1
LOAD_FAILED_PREFIX = "could not load the model: "


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGTERM us when our parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent_pid and os.getppid() != parent_pid:
        sys.exit(0)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m clipper.worker", description=__doc__)
    parser.add_argument("--connect", required=True, help="tcp://host:port or unix:///path")
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--replica", type=int, required=True)
    parser.add_argument("--input-type", required=True)
    parser.add_argument("--artifact", required=True, type=Path)
    parser.add_argument("--heartbeat-interval-s", type=float, default=1.0)
    parser.add_argument("--spin-us", type=int, default=0, help="see Settings.worker_spin_us")
    parser.add_argument("--connect-timeout-s", type=float, default=30.0)
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--memory-limit-bytes", type=int, default=None)
    parser.add_argument(
        "--memory-limit-mode", choices=("auto", "rlimit", "watch"), default="auto",
        help="how a memory limit is enforced (see worker.rlimits); auto: a cgroup where "
        "the worker may make one",
    )  # fmt: skip
    parser.add_argument(
        "--default-memory-limit", default=None, metavar="LIMIT",
        help="the cluster's limit (50%%, 4GiB, bytes) where --memory-limit-bytes is not given",
    )  # fmt: skip
    parser.add_argument("--cpu-share", type=float, default=None)
    parser.add_argument("--max-open-files", type=int, default=None)
    parser.add_argument("--log-file", type=Path, default=None, help="see worker.output_log")
    parser.add_argument("--log-max-bytes", type=int, default=10 * 1024 * 1024)
    parser.add_argument("--log-backups", type=int, default=3)
    parser.add_argument(
        "--frontend", action="append", default=[], metavar="ADDRESS",
        help="a query frontend to serve too (repeated; clipper.rpc.fanout)",
    )  # fmt: skip
    parser.add_argument(CREDENTIAL_FD_FLAG, type=int, default=None, dest="credential_fd",
                        help="a pipe holding the registration credential")  # fmt: skip
    return parser.parse_args(argv)


def _take_credential(fd: int | None) -> str:
    """What this worker registers with: from the pipe at `fd` (closed), else the cluster's
    secret from the environment (a worker started by hand), removed from the environment
    the model's code sees either way."""
    from_environment = os.environ.pop(SECRET_ENV, "")
    return read_credential(fd) if fd is not None else from_environment


def main(argv: list[str] | None = None) -> int:
    """Load the model, dial the server, serve batches."""
    args = _parse_args(argv)
    if args.log_file is not None:
        capture_output(args.log_file, args.log_max_bytes, args.log_backups)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {args.model}:{args.version}:{args.replica} %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if not args.frontend:  # with frontends a worker outlives its control process (fanout)
        _die_with_parent(args.parent_pid)
    log = logging.getLogger("clipper.worker")
    limits = ReplicaLimits(args.memory_limit_bytes, args.cpu_share, args.max_open_files)
    secret, _, ticket = _take_credential(args.credential_fd).partition(TICKET_SEPARATOR)
    for applied in apply_limits(limits, args.memory_limit_mode, args.default_memory_limit):
        log.info("limit: %s", applied)
    spec = ReplicaSpec(
        args.model,
        args.version,
        args.replica,
        parse_input_type(args.input_type),
        secret=secret,
        # A MemoryError is the limit only under RLIMIT_AS (a cgroup or the watch kills).
        memory_limited=resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY,
    )
    try:
        predict = load_model(args.artifact)
    except Exception as exc:
        if isinstance(exc, MemoryError) and spec.memory_limited:
            log.exception("%s while loading the model", MEMORY_LIMIT_EXCEEDED)
            log.error("%s%s", LOAD_FAILED_PREFIX, MEMORY_LIMIT_EXCEEDED)
            return MEMORY_LIMIT_EXIT_CODE
        log.exception("failed to load the model from %s", args.artifact)
        # The last line of the log is what a failed deploy reports first.
        log.error("%s%s: %s", LOAD_FAILED_PREFIX, type(exc).__name__, exc)
        return 2
    home = WorkerConnection.dial(args.connect, args.connect_timeout_s)
    connection: RpcConnection = home
    if args.frontend:
        # started by hand (containerless) with the cluster's secret: it makes its ticket
        ticket = ticket or frontend_ticket(secret, args.model, args.version, args.replica)
        connection = FrontendLinks(home, args.frontend, ticket, args.connect)
    freeze_startup_objects()  # the model is loaded: keep the collector off its objects
    log.info("loaded; serving as pid %d", os.getpid())
    try:
        return serve(connection, spec, predict, args.heartbeat_interval_s, args.spin_us / 1e6)
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
