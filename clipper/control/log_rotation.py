"""Size-based rotation of the log files in a state directory (copy, then truncate).

Worker output goes straight from the process's stdout and stderr into a file opened with
O_APPEND, so the file cannot be renamed under it; copying it to `<name>.1` and truncating
it in place keeps every writer appending to the live file (as logrotate's copytruncate).
A few lines written between the copy and the truncate can be lost; that is the price.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["rotate_logs"]


def _rotate(path: Path, backups: int) -> None:
    for index in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with open(path, "r+b") as file:
        file.truncate(0)


def rotate_logs(logs_dir: Path, max_bytes: int, backups: int) -> list[Path]:
    """Rotate every `*.log` in `logs_dir` larger than `max_bytes`; return those rotated."""
    rotated: list[Path] = []
    if backups < 1 or not logs_dir.is_dir():
        return rotated
    for path in sorted(logs_dir.glob("*.log")):
        try:
            if path.stat().st_size > max_bytes:
                _rotate(path, backups)
                rotated.append(path)
        except OSError:
            continue
    return rotated
