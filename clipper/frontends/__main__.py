"""`python -m clipper.frontends --count N`: one query frontend, started by the control
process (`supervisor.py`). It imports everything first, then waits for one JSON line on
stdin, `{"index": I, "settings": {...}}`: so the supervisor keeps one started as a spare
and a frontend that dies is replaced in the time it takes to bind its sockets, not to
import Python modules (about 0.5 s of CPU)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from clipper.core.config import Settings
from clipper.frontends.process import FrontendServer


async def _main(server: FrontendServer) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stopping.set)
    await server.run()


def main(argv: list[str] | None = None) -> int:
    """Read the settings, serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m clipper.frontends", description=__doc__)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, default=0, help="(for ps; unused)")
    args = parser.parse_args(argv)
    line = sys.stdin.buffer.readline()
    if not line:  # a spare the control process no longer needs
        return 0
    assignment = json.loads(line)
    index = int(assignment["index"])
    settings = Settings.model_validate(assignment["settings"])
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s frontend {index} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    fd = assignment.get("query_fd")
    server = FrontendServer(
        settings, index, args.count, query_fd=None if fd is None else int(fd),
        successor=bool(assignment.get("successor")), digest=str(assignment.get("digest", "")),
    )  # fmt: skip
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main(server))
    else:
        uvloop.run(_main(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
