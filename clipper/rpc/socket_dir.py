"""Where the frontends' Unix sockets live (`Settings.frontends` > 1).

`<state_dir>/frontends/` when every socket path there fits a socket address (sun_path:
107 bytes and a NUL on Linux); otherwise a short private directory,
`/tmp/clipper-<uid>-<hash>`, named by a hash of the resolved state directory. The choice
depends only on the resolved state directory and the user, so every process of one server
(the control process, the frontends, the workers, a control process restarted to adopt
them) finds the same paths. /tmp rather than $XDG_RUNTIME_DIR: a restarted control
process's environment may differ, and logind removes /run/user/<uid> at the user's last
logout while the server keeps running.

The private directory is made mode 0700 and refused unless it is a directory of ours of
that mode (another user cannot have made it for us); the control process removes it at a
clean shutdown (`remove_socket_dir`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
from pathlib import Path

from clipper.core.exceptions import ClipperError
from clipper.rpc.server import UNIX_PATH_MAX

__all__ = [
    "FRONTENDS_DIR", "PRIVATE_BASE", "SOCKET_NAME_MAX", "is_private", "make_socket_dir",
    "remove_socket_dir", "socket_dir",
]  # fmt: skip

FRONTENDS_DIR = "frontends"
PRIVATE_BASE = Path("/tmp")
SOCKET_NAME_MAX = len("control.peer.sock")
"""The longest socket name in the directory (`<i>.peer.sock` of an index under 10,000 is
shorter)."""
_PRIVATE_MODE = 0o700


@functools.lru_cache(maxsize=64)
def socket_dir(state_dir: Path) -> Path:
    """The directory of the frontends' sockets of the server at `state_dir`."""
    resolved = state_dir.resolve()
    inside = resolved / FRONTENDS_DIR
    if len(os.fsencode(inside)) + 1 + SOCKET_NAME_MAX <= UNIX_PATH_MAX:
        return inside
    digest = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:16]
    return PRIVATE_BASE / f"clipper-{os.geteuid()}-{digest}"


def is_private(directory: Path) -> bool:
    """Whether `directory` (a `socket_dir`) is the short private one, not the state's."""
    return directory.parent == PRIVATE_BASE


def make_socket_dir(state_dir: Path) -> Path:
    """`socket_dir(state_dir)`, made if missing. ClipperError if the private directory
    exists as anything but a directory of ours, mode 0700."""
    directory = socket_dir(state_dir)
    if not is_private(directory):
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, _PRIVATE_MODE)
        os.chmod(directory, _PRIVATE_MODE)  # whatever the umask
    info = os.lstat(directory)
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.geteuid()
        or stat.S_IMODE(info.st_mode) != _PRIVATE_MODE
    ):
        raise ClipperError(
            f"{directory} (the sockets of the frontends of {state_dir}, whose path is too "
            "long for them) exists but is not a directory of this user of mode 0700; "
            "remove it"
        )
    return directory


def remove_socket_dir(state_dir: Path) -> None:
    """Remove the private socket directory and what is in it (nothing if the sockets
    live in the state directory, or if it is already gone)."""
    directory = socket_dir(state_dir)
    if not is_private(directory):
        return
    with contextlib.suppress(FileNotFoundError):
        for entry in directory.iterdir():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        directory.rmdir()
