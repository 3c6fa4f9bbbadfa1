"""The `clipper` command line end to end, run as subprocesses against a detached server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli.cli_cluster import Cli
from tests.integration.cluster import pid_alive, wait_pids_exit

pytestmark = pytest.mark.integration

MODEL_FILE = """\
def feature_sum(xs):
    return [float(sum(x)) for x in xs]


def doubled_sum(xs):
    return [2.0 * float(sum(x)) for x in xs]


def shout(xs):
    print("shouting", len(xs), "inputs", flush=True)
    return [x.upper() for x in xs]
"""


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """A detached cluster, started and stopped by the CLI, shared by the module."""
    cluster = Cli.on_free_ports(tmp_path_factory.mktemp("cli") / "state", "cli-tests")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cli-model") / "model.py"
    path.write_text(MODEL_FILE)
    return str(path)


def deploy(cli: Cli, model_file: str, name: str, version: str, function: str, *extra: str) -> None:
    out = cli.run(
        "deploy", name, version, "--file", model_file, "--function", function, *extra
    ).stdout
    assert f"{name}:{version}" in out


def test_tutorial_register_deploy_link_predict(cli: Cli, model_file: str) -> None:
    cli.run(
        "register-app", "hello-world", "--input-type", "doubles",
        "--default-output", "-1.0", "--slo-micros", "100000",
    )  # fmt: skip
    deploy(cli, model_file, "sum-model", "1", "feature_sum", "--input-type", "doubles")
    cli.run("link", "hello-world", "sum-model")

    reply = cli.predict("hello-world", "[1.1, 2.2, 3.3]")
    assert reply["output"] == pytest.approx(6.6)
    assert reply["default"] is False
    batch = cli.predict("hello-world", "[[1.1, 2.2, 3.3], [4.4, 5.5, 6.6]]", "--batch")
    outputs = [item["output"] for item in batch["batch_predictions"]]  # type: ignore[attr-defined]
    assert outputs == pytest.approx([6.6, 16.5])

    apps = {row["NAME"]: row for row in cli.table("apps")}
    assert apps["hello-world"]["MODELS"] == "sum-model"
    assert apps["hello-world"]["SLO_US"] == "100000"
    models = [row for row in cli.table("models") if row["MODEL"] == "sum-model"]
    assert [(row["VERSION"], row["CURRENT"]) for row in models] == [("1", "yes")]
    replicas = [row for row in cli.table("replicas") if row["MODEL"] == "sum-model"]
    assert [(row["VERSION"], row["REPLICA"], row["STATE"]) for row in replicas] == [
        ("1", "0", "ready")
    ]


def test_versions_rollback_and_set_version(cli: Cli, model_file: str) -> None:
    cli.run("register-app", "versioned", "--input-type", "doubles", "--slo-micros", "1000000")
    deploy(cli, model_file, "vmodel", "1", "feature_sum", "--input-type", "doubles")
    cli.run("link", "versioned", "vmodel")
    deploy(cli, model_file, "vmodel", "2", "doubled_sum", "--input-type", "doubles")
    assert cli.predict("versioned", "[1.0, 2.0]")["output"] == 6.0

    out = cli.run("rollback", "vmodel").stdout
    assert "from version 2 to 1" in out
    assert cli.predict("versioned", "[1.0, 2.0]")["output"] == 3.0
    current = {
        row["VERSION"]: row["CURRENT"] for row in cli.table("models") if row["MODEL"] == "vmodel"
    }
    assert current == {"1": "yes", "2": "no"}

    cli.run("set-version", "vmodel", "2")
    assert cli.predict("versioned", "[1.0, 2.0]")["output"] == 6.0
    assert cli.predict("versioned", "[1.0, 2.0]", "--version", "1")["output"] == 3.0


def test_running_a_script_again_works_and_versions_follow_on(cli: Cli, model_file: str) -> None:
    """Issue 21, item 6: registering the same app again is quiet, a deploy without VERSION
    takes the next one (and the model's input type), and a clash says which version is next."""
    register = ("register-app", "again", "--input-type", "doubles", "--slo-micros", "100000")
    cli.run(*register)
    cli.run(*register)  # the same again: quietly
    differing = cli.run(*register[:-1], "200000", ok=False)
    assert differing.returncode != 0
    assert "already exists with latency_slo_micros 100000 (asked 200000)" in differing.stderr
    first = cli.run("deploy", "again", "--file", model_file, "--function", "feature_sum",
                    "--input-type", "doubles").stdout  # fmt: skip
    second = cli.run("deploy", "again", "--file", model_file, "--function", "doubled_sum").stdout
    clash = cli.run(
        "deploy", "again", "2", "--file", model_file, "--function", "feature_sum", ok=False
    )

    assert "Deployed again:1" in first
    assert "Deployed again:2" in second  # the next version, the registered input type
    assert clash.returncode != 0
    assert "the next is 3" in clash.stderr


def test_listings_as_json(cli: Cli, model_file: str) -> None:
    cli.run("register-app", "listed", "--input-type", "doubles")
    apps = json.loads(cli.run("apps", "--json").stdout)
    models = json.loads(cli.run("models", "--json").stdout)
    replicas = json.loads(cli.run("replicas", "--json").stdout)

    assert "listed" in [app["name"] for app in apps]
    assert all("model_version" in model for model in models)
    assert all("model_replica_id" in replica for replica in replicas)


def test_scale(cli: Cli, model_file: str) -> None:
    deploy(cli, model_file, "scaled", "1", "feature_sum", "--input-type", "doubles")
    assert "runs 2 replica(s)" in cli.run("scale", "scaled", "2").stdout
    rows = [row for row in cli.table("replicas") if row["MODEL"] == "scaled"]
    assert sorted(row["REPLICA"] for row in rows) == ["0", "1"]
    assert {row["STATE"] for row in rows} == {"ready"}
    assert [row["REPLICAS"] for row in cli.table("models") if row["MODEL"] == "scaled"] == ["2"]


def test_logs_out_and_status(cli: Cli, model_file: str, tmp_path: Path) -> None:
    cli.run("register-app", "loud", "--input-type", "strings")
    deploy(cli, model_file, "loud", "1", "shout", "--input-type", "strings")
    cli.run("link", "loud", "loud")
    cli.predict("loud", '"abc"')
    out_dir = tmp_path / "clipper_logs"
    paths = [Path(line) for line in cli.run("logs", "--out", str(out_dir)).stdout.splitlines()]
    assert {path.name for path in paths} >= {"server.log", "loud-1-0.log"}
    assert all(path.parent == out_dir and path.is_file() for path in paths)
    assert "shouting 1 inputs" in (out_dir / "loud-1-0.log").read_text()
    assert "==> server.log <==" in cli.run("logs").stdout

    status = dict(
        line.split(None, 1) for line in cli.run("status").stdout.splitlines() if " " in line
    )
    assert status["cluster_name"] == "cli-tests"
    assert int(status["pid"]) == cli.server_pid


def test_errors_exit_1_with_a_message(cli: Cli) -> None:
    unknown = cli.run("predict", "no-such-app", "[1.0]", ok=False)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: ")
    bad_type = cli.run("register-app", "typo", "--input-type", "matrix", ok=False)
    assert (bad_type.returncode, bad_type.stderr.startswith("error: ")) == (1, True)
    missing = cli.run("link", "no-such-app", "no-such-model", ok=False)
    assert missing.returncode == 1


def test_start_detach_then_stop_leaves_nothing_running(tmp_path: Path, model_file: str) -> None:
    cluster = Cli.on_free_ports(tmp_path / "state", "cli-lifecycle")
    cluster.start()
    try:
        assert cluster.server_pid is not None
        assert pid_alive(cluster.server_pid)
        deploy(cluster, model_file, "brief", "1", "feature_sum", "--input-type", "doubles")
        workers = cluster.worker_pids()
        assert len(workers) == 1
        assert cluster.run("stop").stdout.strip() == "Clipper server stopped"
        wait_pids_exit([cluster.server_pid, *workers], 15, "the stopped cluster's processes")
        assert cluster.run("status", ok=False).returncode == 1
        assert cluster.run("stop").stdout.strip() == "No Clipper server is running"
    finally:
        cluster.close()


# -- errors that say what to do (issue 21, item 7) -----------------------------------------


def test_a_default_answer_exits_non_zero(cli: Cli) -> None:
    cli.run("register-app", "unlinked", "--input-type", "doubles")
    result = cli.run("predict", "unlinked", "[1.0]", ok=False)

    assert result.returncode == 2
    assert json.loads(result.stdout)["default"] is True


def test_an_unreachable_server_suggests_clipper_start(tmp_path: Path) -> None:
    nobody = Cli.on_free_ports(tmp_path / "state", "nobody-home")
    result = nobody.run("apps", ok=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cluster 'nobody-home'" in result.stderr
    assert "`clipper start`" in result.stderr


def test_a_wrong_admin_token_mentions_clipper_token_show(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIPPER_ADMIN_TOKEN", "not-the-token")
    result = cli.run("apps", ok=False)

    assert result.returncode == 1
    assert "`clipper token show`" in result.stderr


def test_logs_into_a_closed_pipe_end_quietly(cli: Cli) -> None:
    command = " ".join([sys.executable, "-m", "clipper.cli", "logs", *cli.flags])
    result = subprocess.run(["bash", "-o", "pipefail", "-c", f"{command} | head -c 10"],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    assert (result.returncode, result.stderr) == (0, "")
    assert len(result.stdout) == 10


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1\ny = undefined_name\n", "NameError: name 'undefined_name' is not defined"),
        ("def predict(xs:\n", "SyntaxError:"),
    ],
)
def test_a_model_file_that_does_not_import_is_one_line(
    cli: Cli, tmp_path: Path, source: str, expected: str
) -> None:
    path = tmp_path / "broken.py"
    path.write_text(source)
    result = cli.run("deploy", "broken", "--file", str(path), "--input-type", "doubles", ok=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: could not import {path}: ")
    assert expected in first
    assert "line " in first


def test_a_missing_function_lists_those_the_file_defines(cli: Cli, model_file: str) -> None:
    result = cli.run("deploy", "nofn", "--file", model_file, "--function", "nope",
                     "--input-type", "doubles", ok=False)  # fmt: skip

    assert result.returncode == 1
    assert "defines no function 'nope'; it defines: " in result.stderr
    assert "feature_sum" in result.stderr
