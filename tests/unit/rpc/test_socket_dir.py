"""Where the frontends' sockets live: the state directory's `frontends/` when they fit a
socket address, else a short private directory named by the resolved state directory."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.core.exceptions import ClipperError
from clipper.rpc.fanout import frontend_peer_path, frontend_rpc_path
from clipper.rpc.server import UNIX_PATH_MAX
from clipper.rpc.socket_dir import (
    PRIVATE_BASE,
    make_socket_dir,
    remove_socket_dir,
    socket_dir,
)


@pytest.fixture
def long_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory of about 150 characters; its private socket directory removed
    afterwards."""
    state_dir = tmp_path / ("s" * max(1, 150 - len(str(tmp_path)) - 1))
    yield state_dir
    private = socket_dir(state_dir)
    if private.is_dir() and not private.is_symlink():
        private.chmod(0o700)
        remove_socket_dir(state_dir)


def all_paths(state_dir: Path, count: int = 8) -> list[Path]:
    paths = [frontend_peer_path(state_dir, None)]
    for index in range(count):
        paths += [frontend_rpc_path(state_dir, index), frontend_peer_path(state_dir, index)]
    return paths


def test_a_short_state_dir_keeps_its_sockets(tmp_path: Path) -> None:
    assert socket_dir(tmp_path) == tmp_path.resolve() / "frontends"
    assert frontend_rpc_path(tmp_path, 1) == tmp_path.resolve() / "frontends" / "1.rpc.sock"


def test_a_long_state_dir_gets_a_short_private_dir_the_same_for_every_process(
    long_state_dir: Path,
) -> None:
    assert len(os.fsencode(long_state_dir / "frontends" / "control.peer.sock")) > UNIX_PATH_MAX
    chosen = socket_dir(long_state_dir)

    assert chosen.parent == PRIVATE_BASE
    assert chosen.name.startswith(f"clipper-{os.geteuid()}-")
    assert all(len(os.fsencode(path)) <= UNIX_PATH_MAX for path in all_paths(long_state_dir))
    spelled_otherwise = long_state_dir / ".." / long_state_dir.name  # resolves the same
    assert socket_dir(spelled_otherwise) == chosen
    assert socket_dir(long_state_dir.parent / ("t" * len(long_state_dir.name))) != chosen


def test_the_private_dir_is_made_0700_and_removed(long_state_dir: Path) -> None:
    made = make_socket_dir(long_state_dir)
    (made / "0.rpc.sock").touch()

    info = made.lstat()
    assert stat.S_ISDIR(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == os.geteuid()
    assert make_socket_dir(long_state_dir) == made  # an existing one of ours is taken
    remove_socket_dir(long_state_dir)
    assert not made.exists()
    remove_socket_dir(long_state_dir)  # already gone: nothing to do


def test_a_private_dir_others_could_enter_is_refused(long_state_dir: Path) -> None:
    made = make_socket_dir(long_state_dir)
    made.chmod(0o755)

    with pytest.raises(ClipperError, match="mode 0700"):
        make_socket_dir(long_state_dir)


def test_a_symlink_in_its_place_is_refused(long_state_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    os.symlink(target, socket_dir(long_state_dir))
    try:
        with pytest.raises(ClipperError, match="not a directory"):
            make_socket_dir(long_state_dir)
    finally:
        socket_dir(long_state_dir).unlink()
