"""Model environments on a real server: models needing different versions of one package
served side by side from cached venvs, and deploys that cannot load failing at once with
the model's own error, leaving nothing behind."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipper.core.exceptions import DeployFailed
from clipper_admin import ClipperConnection, ClipperException
from clipper_admin.deployers import python as python_deployer
from tests.integration.clipper_admin_cluster import admin_cluster

pytestmark = pytest.mark.integration

OLD, NEW = "0.5.0", "0.5.1"  # of inflection, a tiny pure-Python package


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClipperConnection]:
    with admin_cluster(tmp_path_factory.mktemp("environments") / "state", "envs") as conn:
        yield conn


def inflection_version(inputs: list[Any]) -> list[str]:
    import inflection

    return [inflection.__version__ for _ in inputs]


def query(conn: ClipperConnection, app: str, value: str = "x") -> Any:
    body = {"input": value}
    reply = httpx.post(f"http://{conn.get_query_addr()}/{app}/predict", json=body, timeout=30)
    return reply.json()["output"]


def deploy_inflection(conn: ClipperConnection, app: str, model_version: int, version: str) -> None:
    if conn.get_app_info(app) is None:
        conn.register_application(app, "strings", "none", 5_000_000)
    python_deployer.deploy_python_closure(
        conn,
        app,
        model_version,
        "strings",
        inflection_version,
        pkgs_to_install=[f"inflection=={version}"],
    )
    conn.link_model_to_app(app, app)


def test_two_versions_of_a_package_serve_side_by_side(
    conn: ClipperConnection, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_inflection(conn, "inflection-old", 1, OLD)
    deploy_inflection(conn, "inflection-new", 1, NEW)

    assert (query(conn, "inflection-old"), query(conn, "inflection-new")) == (OLD, NEW)
    infos = [conn.get_model_info(app, 1) or {} for app in ("inflection-old", "inflection-new")]
    assert [info["environment_status"] for info in infos] == ["ready", "ready"]
    keys = {info["environment"]["key"] for info in infos}
    assert len(keys) == 2
    progress = capsys.readouterr().err
    assert "built in" in progress  # the deploy showed the build's progress
    assert "ERROR" not in progress  # nor an installer's complaint about the server's packages


def test_a_built_environment_is_reused_from_the_cache(conn: ClipperConnection) -> None:
    if conn.get_app_info("inflection-old") is None:  # run alone: build it first
        deploy_inflection(conn, "inflection-old", 1, OLD)
    admin = conn._admin_api()
    before = admin.get_events(limit=1)[-1]["seq"]
    started = time.monotonic()

    deploy_inflection(conn, "inflection-old", 2, OLD)

    assert time.monotonic() - started < 5
    assert query(conn, "inflection-old") == OLD
    kinds = [event["kind"] for event in admin.get_events(since=before)]
    assert "environment_build_started" not in kinds
    assert any(env["state"] == "ready" for env in admin.get_environments())


def test_the_cli_deploys_a_model_directory(conn: ClipperConnection, tmp_path: Path) -> None:
    model_dir = tmp_path / "shouting"
    model_dir.mkdir()
    (model_dir / "requirements.txt").write_text(f"inflection=={NEW}\n")
    (model_dir / "predict.py").write_text(
        "import inflection\n\n\nclass Shout:\n"
        "    def load(self, path):\n        self.prefix = inflection.__version__\n\n"
        "    def predict(self, inputs):\n"
        "        return [f'{self.prefix}:{s.upper()}' for s in inputs]\n"
    )
    conn.register_application("shouting", "strings", "none", 5_000_000)
    manager = conn.cm
    flags = [
        "--cluster-name", manager.settings.cluster_name,
        "--state-dir", str(manager.settings.resolved_state_dir()),
        "--admin-port", str(manager.settings.admin_port),
    ]  # fmt: skip

    result = subprocess.run(
        [sys.executable, "-m", "clipper.cli", "deploy", str(model_dir), *flags,
         "--input-type", "strings"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "Deployed shouting:1" in result.stdout
    conn.link_model_to_app("shouting", "shouting")
    assert query(conn, "shouting", "hi") == f"{NEW}:HI"


# -- deploys that cannot load ------------------------------------------------------------


class BrokenWeights:
    def load(self, path: str) -> None:
        raise RuntimeError("the weights file is corrupt")

    def predict(self, inputs: list[Any]) -> list[Any]:
        return inputs


def worker_pids(model: str) -> list[int]:
    """Pids of live worker processes serving `model`, found by their command line."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"clipper.worker" in argv and model.encode() in argv:
            pids.append(int(entry.name))
    return pids


def assert_nothing_left(conn: ClipperConnection, name: str) -> None:
    assert f"{name}:1" not in conn.get_all_models()
    assert conn.get_model_info(name, 1) is None
    assert not [r for r in conn.get_all_model_replicas() if r.startswith(f"{name}:")]
    assert worker_pids(name) == []
    artifacts = conn.cm.settings.resolved_state_dir() / "models" / name
    assert not (artifacts / "1").exists()


def test_a_load_that_raises_fails_the_deploy_with_its_message(conn: ClipperConnection) -> None:
    started = time.monotonic()
    with pytest.raises(ClipperException, match="RuntimeError: the weights file is corrupt"):
        python_deployer.deploy_model_class(conn, "broken-load", 1, "doubles", BrokenWeights)

    assert time.monotonic() - started < 10
    assert_nothing_left(conn, "broken-load")


def test_a_missing_module_fails_the_deploy_with_the_import_error(
    conn: ClipperConnection, tmp_path: Path
) -> None:
    (tmp_path / "predict.py").write_text(
        "import clipper_test_no_such_module\n\n\ndef predict(inputs):\n    return inputs\n"
    )
    started = time.monotonic()
    with pytest.raises(ClipperException, match="No module named 'clipper_test_no_such_module'"):
        conn.build_and_deploy_model("missing-module", 1, "doubles", str(tmp_path))

    assert time.monotonic() - started < 10
    assert_nothing_left(conn, "missing-module")


def test_a_package_that_cannot_be_installed_fails_with_the_installers_output(
    conn: ClipperConnection,
) -> None:
    with pytest.raises(DeployFailed, match="building the environment") as failure:
        python_deployer.deploy_python_closure(
            conn, "not-installable", 1, "strings", inflection_version,
            pkgs_to_install=["clipper-test-no-such-package-xyz==0.0.1"],
        )  # fmt: skip

    message = str(failure.value)
    assert "clipper-test-no-such-package-xyz" in message
    assert "No matching distribution" in message or "not found" in message
    assert_nothing_left(conn, "not-installable")
