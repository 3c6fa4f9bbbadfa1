"""Start a Clipper server as a detached background process, wait for it, and stop it.

The server runs `python -m clipper.cli start ...` in its own session and is not a child of
the caller (it is spawned through a short-lived intermediate process), so it outlives the
caller and never becomes the caller's zombie. Its stdout and stderr are appended to
`<state_dir>/logs/server.log`. The server writes its pid to `<state_dir>/server.pid`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from clipper.core.config import CONFIG_FILE_ENV, Settings
from clipper.core.exceptions import ClipperError
from clipper.core.processes import process_alive
from clipper.security import prepare_admin_token, scheme

__all__ = [
    "answers_ping",
    "log_path",
    "pid_path",
    "process_alive",
    "server_command",
    "start_detached",
    "start_server_process",
    "stop_server",
    "wait_query_ready",
]

_POLL_INTERVAL_S = 0.1
_LOG_TAIL_LINES = 30
_REPO_ROOT = Path(__file__).resolve().parents[2]  # clipper/cli/launcher.py

# Runs in the intermediate process: spawn the server in a new session with its output in
# the log (argv[1]), print its pid, and exit at once without waiting for it.
_SPAWN_SCRIPT = """\
import os, subprocess, sys
with open(sys.argv[1], "ab") as log:
    server = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log,
                              stderr=log, start_new_session=True)
print(server.pid, flush=True)
os._exit(0)
"""


def log_path(settings: Settings) -> Path:
    """`<state_dir>/logs/server.log`: where a launched server's output goes."""
    return settings.resolved_state_dir() / "logs" / "server.log"


def pid_path(settings: Settings) -> Path:
    """`<state_dir>/server.pid`: written by the server at start."""
    return settings.resolved_state_dir() / "server.pid"


def server_command(settings: Settings, extra_args: Sequence[str] = ()) -> list[str]:
    """The command line that starts a server in the foreground with `settings`."""
    return [
        sys.executable,
        "-m",
        "clipper.cli",
        "start",
        *("--cluster-name", settings.cluster_name),
        *("--host", settings.host),
        *("--query-port", str(settings.query_port)),
        *("--admin-port", str(settings.admin_port)),
        *("--rpc-port", str(settings.rpc_port)),
        *("--state-dir", str(settings.resolved_state_dir())),
        *extra_args,
    ]


def start_server_process(
    settings: Settings, extra_args: Sequence[str] = (), timeout_s: float = 30.0
) -> int:
    """Start a server in the background and return its pid once `/admin/ping` answers PONG.

    Raises ClipperError if a server already answers on the admin port, or with the tail of
    the server log if the process exits (or does not answer) within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    if answers_ping(settings):
        raise ClipperError(
            f"A Clipper server already answers at {settings.host}:{settings.admin_port}; "
            "stop it first"
        )
    log = log_path(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    pid = _spawn_detached(server_command(settings, extra_args), log, _child_env(settings))
    ready = _wait_until(deadline, lambda: answers_ping(settings) or not process_alive(pid))
    if ready and process_alive(pid):
        return pid
    reason = "exited" if not process_alive(pid) else f"did not answer within {timeout_s:g}s"
    raise ClipperError(f"Clipper server (pid {pid}) {reason}; end of {log}:\n{_tail(log)}")


def start_detached(
    settings: Settings, extra_args: Sequence[str], timeout_s: float, console: TextIO
) -> int:
    """`clipper start --detach`: create the admin token, start the server in the
    background, wait until its query API answers, print its addresses on `console`; its pid."""
    prepare_admin_token(settings, console)
    pid = start_server_process(settings, extra_args, timeout_s=timeout_s)
    wait_query_ready(settings, timeout_s=timeout_s)
    print(f"Clipper cluster {settings.cluster_name!r} started (pid {pid})", file=console)
    print(f"  query API: {scheme(settings)}://{settings.host}:{settings.query_port}", file=console)
    print(f"  admin API: {scheme(settings)}://{settings.host}:{settings.admin_port}", file=console)
    print(f"  logs:      {log_path(settings)}", file=console, flush=True)
    return pid


def wait_query_ready(settings: Settings, timeout_s: float = 30.0) -> None:
    """Return once the query API answers `GET /healthz`; raise ServerUnreachable on timeout."""
    from clipper.client import QueryClient  # the clients (httpx) load on first use

    deadline = time.monotonic() + timeout_s
    with QueryClient.from_settings(settings, timeout_s=2.0) as client:
        if not _wait_until(deadline, lambda: _succeeds(client.healthz)):
            client.healthz()  # raises the translated error


def stop_server(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Shut a server down via `/admin/shutdown` and wait for its process to exit.

    Returns False when no server answers and none runs. The pid comes from
    `<state_dir>/server.pid`; if that process is still alive after `timeout_s`, it alone
    is killed with SIGKILL (the pid the live server reports in `/admin/status` wins over a
    stale file). A running process whose admin API does not answer is never killed (its pid
    may have been reused): ServerUnreachable is raised instead.
    """
    from clipper.client import AdminClient, ServerUnreachable

    deadline = time.monotonic() + timeout_s
    file_pid = _read_pid(pid_path(settings))
    with AdminClient.from_settings(settings, timeout_s=min(timeout_s, 10.0)) as client:
        try:
            status = client.status()
        except ServerUnreachable:
            if file_pid is None or not process_alive(file_pid):
                return False
            raise ServerUnreachable(
                f"Process {file_pid} from {pid_path(settings)} runs, but no server answers at "
                f"{settings.host}:{settings.admin_port}; not killing it"
            ) from None
        pid = int(status.get("pid") or file_pid or 0)
        with contextlib.suppress(ServerUnreachable):  # the server may exit before answering
            client.shutdown()
    if pid <= 0:
        raise ClipperError("The server did not report its pid; cannot wait for it to exit")
    if not _wait_until(deadline, lambda: not process_alive(pid)):
        os.kill(pid, signal.SIGKILL)
        _wait_until(time.monotonic() + 5.0, lambda: not process_alive(pid))
    return True


def _spawn_detached(command: list[str], log: Path, env: dict[str, str]) -> int:
    spawner = [sys.executable, "-c", _SPAWN_SCRIPT, str(log), *command]
    result = subprocess.run(
        spawner, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout.strip().isdigit():
        raise ClipperError(f"Could not start the Clipper server: {result.stderr.strip()}")
    return int(result.stdout.strip())


def _child_env(settings: Settings) -> dict[str, str]:
    """The caller's environment, with every setting as `CLIPPER_<FIELD>` and clipper
    importable; a config file's settings are among them, so the file itself is not named."""
    env = dict(os.environ)
    for field in Settings.model_fields:  # a setting the caller's environment holds but the
        env.pop(f"CLIPPER_{field.upper()}", None)  # settings left unset is not handed on
    env.pop(CONFIG_FILE_ENV, None)
    env.update(settings.to_env())
    env["CLIPPER_STATE_DIR"] = str(settings.resolved_state_dir())
    python_path = [str(_REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    return env


def answers_ping(settings: Settings) -> bool:
    """Whether a Clipper server answers `/admin/ping` at the settings' admin address."""
    from clipper.client import AdminClient

    with AdminClient.from_settings(settings, timeout_s=2.0) as client:
        try:
            return client.ping() == "PONG"
        except ClipperError:
            return False


def _succeeds(action: Callable[[], object]) -> bool:
    try:
        action()
    except ClipperError:
        return False
    return True


def _wait_until(deadline: float, condition: Callable[[], bool]) -> bool:
    """Poll `condition` until it holds (True) or the monotonic `deadline` passes (False)."""
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL_S)
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-_LOG_TAIL_LINES:])
