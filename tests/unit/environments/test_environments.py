"""Model environments: declaring, capturing, hashing, and checking them against an interpreter."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipper.core.exceptions import EnvironmentBuildFailed, InvalidRequest
from clipper.environments import Environment, declare_environment
from clipper.environments.capture import capture_pickle, distributions_of, read_requirements_file
from clipper.environments.interpreter import InterpreterInfo, unmet_requirements
from clipper.environments.manager import WORKER_PACKAGES, EnvironmentManager
from clipper.environments.spec import merge_requirements

NUMPY = f"numpy=={np.__version__}"


def uses_numpy(inputs: list[Any]) -> list[float]:
    return [float(np.sum(x)) for x in inputs]


def imports_sklearn_inside(inputs: list[Any]) -> list[str]:
    import sklearn

    return [sklearn.__version__ for _ in inputs]


def plain(inputs: list[Any]) -> list[Any]:
    return inputs


def test_capture_pins_the_installed_versions_of_what_the_function_refers_to() -> None:
    _, modules = capture_pickle(uses_numpy)

    assert declare_environment("capture", modules=modules).requirements == (NUMPY,)


def test_capture_sees_imports_inside_the_function_body() -> None:
    import sklearn

    _, modules = capture_pickle(imports_sklearn_inside)

    assert f"scikit-learn=={sklearn.__version__}" in distributions_of_pins(modules)


def distributions_of_pins(modules: set[str]) -> list[str]:
    return [f"{name}=={version}" for name, version in distributions_of(modules).items()]


def test_capture_leaves_out_the_standard_library_clipper_and_cloudpickle() -> None:
    _, modules = capture_pickle(plain)

    assert declare_environment("capture", modules=modules | {"os", "clipper"}).requirements == ()


def test_local_functions_are_pickled_by_value() -> None:
    pickled, _ = capture_pickle(plain)

    script = (
        "import sys, cloudpickle; f = cloudpickle.loads(sys.stdin.buffer.read()); print(f([7]))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], input=pickled, capture_output=True, check=True
    )
    assert result.stdout.strip() == b"[7]"


def test_pkgs_to_install_win_over_a_captured_version() -> None:
    environment = declare_environment(
        "capture", modules={"numpy"}, pkgs_to_install=["numpy>=1", "six==1.16.0"]
    )

    assert environment.requirements == ("numpy>=1", "six==1.16.0")


def test_a_list_and_a_requirements_file_are_taken_as_given(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("six==1.17.0\n")
    (tmp_path / "requirements.txt").write_text("# models\n-r base.txt\nattrs>=20  # any\n\n")

    from_file = declare_environment(tmp_path / "requirements.txt")
    from_list = declare_environment(["six==1.17.0", "attrs>=20"])

    assert from_file.requirements == from_list.requirements == ("attrs>=20", "six==1.17.0")
    assert (from_file.source, from_list.source) == ("file", "list")


def test_an_environment_that_is_neither_capture_nor_a_file_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="neither 'capture' nor a requirements file"):
        declare_environment("no-such-file.txt")


def test_requirements_file_include_cycles_end(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("-r b.txt\nsix\n")
    (tmp_path / "b.txt").write_text("-r a.txt\nattrs\n")

    assert read_requirements_file(tmp_path / "a.txt") == ["attrs", "six"]


def test_keys_are_equal_for_equal_environments_only() -> None:
    one = Environment("3.11.2", tuple(merge_requirements(["b==1", "a==2"])))
    same = Environment("3.11.9", ("a==2", "b==1"), source="list")
    other = Environment("3.11.2", ("a==2", "b==2"))

    assert one.key() == same.key() != other.key()
    assert one.key() != one.key(["numpy"])
    assert Environment.from_json(one.to_json()) == one


@pytest.mark.parametrize(
    ("requirements", "python", "unmet"),
    [
        (["six==1.16.0"], "3.11.4", []),
        (["six>=1.17"], "3.11.4", ["six>=1.17 (have 1.16.0)"]),
        (["attrs"], "3.11.4", ["attrs (not installed)"]),
        (["attrs; python_version < '3'"], "3.11.4", []),
        ([], "3.10.1", ["Python 3.10 (have 3.11.4)"]),
        (
            ["git+https://x.invalid/x.git"],
            "3.11.4",
            ["git+https://x.invalid/x.git (cannot be checked)"],
        ),
    ],
)
def test_unmet_requirements_say_what_is_missing(
    requirements: list[str], python: str, unmet: list[str]
) -> None:
    info = InterpreterInfo("3.11.4", {"six": "1.16.0"})

    assert unmet_requirements(Environment(python, tuple(requirements)), info) == unmet


def test_the_server_runs_environments_it_satisfies(tmp_path: Path) -> None:
    manager = EnvironmentManager(tmp_path)
    satisfied = Environment(platform.python_version(), (NUMPY,))
    missing = Environment(platform.python_version(), ("no-such-package-xyz==1.0",))

    assert manager.ready_interpreter(satisfied) == sys.executable
    assert manager.status(satisfied)["state"] == "server"
    assert manager.ready_interpreter(missing) is None
    assert manager.status(missing)["state"] == "missing"


def test_worker_requirements_follow_clippers_declared_ranges(tmp_path: Path) -> None:
    requirements = EnvironmentManager(tmp_path).worker_requirements

    assert [r.split(">")[0].split("<")[0].split("=")[0] for r in requirements] == list(
        WORKER_PACKAGES
    )


def test_the_worker_imports_no_third_party_package_beyond_its_own() -> None:
    script = (
        "import sys, clipper.worker.__main__, clipper.artifacts.loader\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)

    third_party = {
        name
        for name in result.stdout.split()
        if name not in sys.stdlib_module_names and not name.startswith("_")
    }
    assert third_party <= {"clipper", *WORKER_PACKAGES, "cython_runtime"}, result.stderr


async def test_an_environment_for_a_missing_python_fails_to_build_and_says_why(
    tmp_path: Path,
) -> None:
    events: list[tuple[str, dict[str, object]]] = []
    manager = EnvironmentManager(
        tmp_path, events=lambda kind, detail: events.append((kind, dict(detail)))
    )
    wanted = Environment("3.99.0", ())

    with pytest.raises(EnvironmentBuildFailed, match=r"needs Python 3\.99, but no python3\.99"):
        await manager.ensure(wanted, "m:1")

    assert manager.status(wanted)["state"] == "failed"
    assert [kind for kind, _ in events] == ["environment_build_started", "environment_build_failed"]
    assert not (tmp_path / manager.key(wanted)).exists()


def test_uv_builds_with_uv_and_pip_builds_with_the_servers_pip(tmp_path: Path) -> None:
    from clipper.environments.builder import BuildPlan, _create_command, _install_command

    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    uv = BuildPlan(tmp_path / "k", minor, ["six"], "uv", uv="/usr/bin/uv")
    pip = BuildPlan(tmp_path / "k", minor, ["six"], "pip")
    requirements = tmp_path / "requirements.txt"

    assert _create_command(uv)[:3] == ["/usr/bin/uv", "venv", "--python"]
    assert _install_command(uv, requirements)[:4] == ["/usr/bin/uv", "pip", "install", "--python"]
    assert _create_command(pip)[:3] == [sys.executable, "-m", "venv"]
    assert _install_command(pip, requirements)[:4] == [sys.executable, "-m", "pip", "--python"]
