"""Building one virtual environment for a model: create it, link Clipper, install, verify.

The venv imports Clipper through a `.pth` file naming a directory that holds only a symlink
to the server's own `clipper` package, so the worker always runs the server's code (same
RPC protocol, even after an upgrade of the server) and the venv holds nothing of Clipper's
server-side dependencies: only the model's requirements plus the worker's four (cloudpickle,
msgpack, numpy, orjson, within Clipper's own version ranges).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from clipper.core.exceptions import EnvironmentBuildFailed

__all__ = ["MARKER_FILE", "BuildPlan", "build_environment", "link_clipper", "venv_python"]

MARKER_FILE = "clipper_env.json"
"""Written last: a cache directory without it is an unfinished build."""
LOG_FILE = "build.log"
TAIL_CHARS = 4000
_PROGRESS_PREFIXES = (
    "Collecting", "Downloading", "Installing collected", "Successfully installed",
    "Resolved", "Prepared", "Installed", "Using Python", "Using CPython", "ERROR",
)  # fmt: skip

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """What to build where."""

    directory: Path
    python_minor: str
    requirements: Sequence[str]
    installer: str  # "uv" or "pip"
    uv: str | None = None


def venv_python(directory: Path) -> Path:
    """The interpreter of the venv in `directory`."""
    return directory / "bin" / "python"


def clipper_package_dir() -> Path:
    """The directory of the running `clipper` package."""
    return Path(__file__).resolve().parents[1]  # clipper/environments/builder.py


def link_clipper(directory: Path) -> None:
    """Point `<venv>/clipper-path/clipper` at the running Clipper (again, if it moved)."""
    link = directory / "clipper-path" / "clipper"
    target = clipper_package_dir()
    if link.is_symlink() and Path(link.readlink()) == target:
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(target, target_is_directory=True)


async def build_environment(plan: BuildPlan, progress: Progress) -> None:
    """Build the venv in `plan.directory` (replacing an unfinished one); raise
    EnvironmentBuildFailed with the installer's output when a step fails."""
    directory = plan.directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    log_path = directory.parent / f"{directory.name}.{LOG_FILE}"
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:  # noqa: ASYNC230 (local file)

        async def step(message: str, command: list[str]) -> None:
            progress(message)
            log.write(f"$ {' '.join(command)}\n")
            await _run(command, directory.parent, log, progress)

        await step(f"creating a Python {plan.python_minor} virtual environment",
                   _create_command(plan))  # fmt: skip
        link_clipper(directory)
        _write_pth(directory)
        requirements = directory / "requirements.txt"
        requirements.write_text("".join(f"{line}\n" for line in plan.requirements))
        await step(f"installing {len(plan.requirements)} requirements with {plan.installer}",
                   _install_command(plan, requirements))  # fmt: skip
        python = str(venv_python(directory))
        await step("checking that the worker imports", [python, "-c", "import clipper.worker"])
    shutil.move(str(log_path), directory / LOG_FILE)
    marker = {"requirements": list(plan.requirements), "installer": plan.installer,
              "python_minor": plan.python_minor, "seconds": time.monotonic() - started}  # fmt: skip
    (directory / MARKER_FILE).write_text(json.dumps(marker, indent=2))


def _base_python(python_minor: str) -> str:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python_minor == here:
        return sys.executable
    found = shutil.which(f"python{python_minor}")
    if found is None:
        raise EnvironmentBuildFailed(
            f"the model needs Python {python_minor}, but no python{python_minor} is on PATH "
            f"(the server runs Python {here}); install it, or deploy from Python {here}"
        )
    return found


def _server_has_pip() -> bool:
    return importlib.util.find_spec("pip") is not None


def _create_command(plan: BuildPlan) -> list[str]:
    if plan.installer == "uv" and plan.uv is not None:
        return [plan.uv, "venv", "--python", _base_python(plan.python_minor), str(plan.directory)]
    command = [_base_python(plan.python_minor), "-m", "venv", str(plan.directory)]
    # Without its own pip the venv is made in a blink; the server's pip installs into it.
    return [*command, "--without-pip"] if _server_has_pip() else command


def _install_command(plan: BuildPlan, requirements: Path) -> list[str]:
    python = str(venv_python(plan.directory))
    if plan.installer == "uv" and plan.uv is not None:
        return [plan.uv, "pip", "install", "--python", python, "-r", str(requirements)]
    options = ["--no-input", "--disable-pip-version-check", "--progress-bar", "off"]
    if _server_has_pip():
        pip = [sys.executable, "-m", "pip", "--python", python, "install"]
    else:
        pip = [python, "-m", "pip", "install"]
    return [*pip, *options, "-r", str(requirements)]


async def _no_output() -> AsyncIterator[bytes]:
    return
    yield b""  # an empty async generator


def _write_pth(directory: Path) -> None:
    """`clipper.pth` in the venv's site-packages, naming `clipper-path` relative to it."""
    for site_packages in (directory / "lib").glob("python*/site-packages"):
        relative = Path("..", "..", "..", "clipper-path")
        (site_packages / "_clipper_worker.pth").write_text(f"{relative}\n")


_SERVER_PATH_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")
"""The server's own interpreter settings: an installer that saw them would count the
server's packages (Clipper's checkout among them) as the venv's, and report their missing
dependencies as conflicts (pip's `ERROR: ... dependency conflicts`)."""


def _installer_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in _SERVER_PATH_VARIABLES}


async def _run(command: list[str], cwd: Path, log: TextIO, progress: Progress) -> None:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,  # not the server's: nothing there may leak into the venv or its check
        env=_installer_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        async for raw in process.stdout or _no_output():
            line = raw.decode("utf-8", "replace").rstrip()
            output.append(line)
            log.write(line + "\n")
            if line.lstrip().startswith(_PROGRESS_PREFIXES):
                progress(line.strip())
        code = await process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if code != 0:
        tail = "\n".join(output)[-TAIL_CHARS:]
        raise EnvironmentBuildFailed(f"`{' '.join(command)}` exited with code {code}:\n{tail}")
