"""The state directory is the server's user's alone (issue 28, item 16): the directory 0700,
the registry, tokens and logs 0600, including a directory an earlier version left open."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.integration.cluster import ServerFactory, deploy


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def feature_sum(xs: list[list[float]]) -> list[float]:
    return [float(sum(x)) for x in xs]


def test_the_state_directory_and_its_files_are_private(configured_server: ServerFactory) -> None:
    server = configured_server("private")
    deploy(server, "m", feature_sum)
    state = server.state_dir

    assert mode(state) == 0o700
    for name in ("registry.db", "admin_token"):
        assert mode(state / name) == 0o600, name
    logs = list((state / "logs").iterdir())
    assert logs
    for log in logs:
        assert mode(log) & 0o077 == 0, log


def test_a_state_directory_left_open_is_closed_at_start(configured_server: ServerFactory) -> None:
    first = configured_server("reopened")
    first.stop()
    first.state_dir.chmod(0o755)
    (first.state_dir / "registry.db").chmod(0o644)

    first.start()

    assert mode(first.state_dir) == 0o700
