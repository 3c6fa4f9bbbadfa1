"""`Cli`: the `clipper` command run as subprocesses against one cluster on free ports."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.integration.cluster import free_port, kill_leftovers, wait_pids_exit

__all__ = ["Cli"]


@dataclass
class Cli:
    """Runs `python -m clipper.cli COMMAND ... <cluster flags>` for one cluster."""

    flags: list[str]
    server_pid: int | None = None

    @classmethod
    def on_free_ports(cls, state_dir: Path, name: str) -> Cli:
        return cls([
            "--cluster-name", name, "--state-dir", str(state_dir),
            "--query-port", str(free_port()), "--admin-port", str(free_port()),
            "--rpc-port", str(free_port()),
        ])  # fmt: skip

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "clipper.cli", *args, *self.flags]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if ok:
            assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def start(self) -> None:
        out = self.run("start", "--detach").stdout
        match = re.search(r"started \(pid (\d+)\)", out)
        assert match is not None, out
        self.server_pid = int(match.group(1))

    def predict(self, *args: str) -> dict[str, object]:
        return dict(json.loads(self.run("predict", *args).stdout))

    def table(self, command: str) -> list[dict[str, str]]:
        """A listing (`apps`, `models`, `replicas`) as dicts by column header."""
        header, _rule, *rows = self.run(command).stdout.splitlines()
        names = header.split()
        return [dict(zip(names, re.split(r"\s{2,}", row.strip()), strict=True)) for row in rows]

    def worker_pids(self) -> set[int]:
        return {int(row["PID"]) for row in self.table("replicas") if row["PID"].isdigit()}

    def close(self) -> None:
        """Stop the server if it still runs; kill what is left of it."""
        workers = self.worker_pids() if self._answers() else set()
        self.run("stop", ok=False)
        pids = [*workers, *([self.server_pid] if self.server_pid else [])]
        with contextlib.suppress(TimeoutError):
            wait_pids_exit(pids, 10, "a process of the cluster")
        kill_leftovers(pids)

    def _answers(self) -> bool:
        return self.server_pid is not None and self.run("status", ok=False).returncode == 0
