"""Unit tests for the replica actor's class as a plain object (no Ray), and Ray settings."""

from __future__ import annotations

import io
import signal
import tarfile
from pathlib import Path

import pytest

from clipper.cli.main import build_parser, settings_from_args
from clipper.placement.ray_actor import ReplicaActor, unpack_artifact
from clipper_admin import RayContainerManager


def archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def actor(script: str) -> ReplicaActor:
    """An actor whose 'worker' is `python -c script` (given --artifact and --parent-pid)."""
    return ReplicaActor("m:1:0", ["-c", script], archive({"clipper_model.json": b"{}"}))


def test_unpack_artifact_writes_the_files_under_artifact(tmp_path: Path) -> None:
    directory = unpack_artifact(archive({"a/b.txt": b"hi"}), tmp_path)

    assert (directory / "a" / "b.txt").read_bytes() == b"hi"


async def test_the_worker_gets_the_unpacked_artifact_and_its_output_is_readable() -> None:
    replica = actor(
        "import sys, pathlib; args = sys.argv[1:]; "
        "print(sorted(p.name for p in pathlib.Path(args[args.index('--artifact') + 1]).iterdir()))"
        "; sys.exit(3)"
    )

    info = await replica.start()
    code = await replica.wait()
    output, offset = await replica.read_log(0, 1 << 20)
    await replica.finish()

    assert code == 3
    assert output == b"['clipper_model.json']\n"
    assert offset == len(output)
    assert info["pid"] > 0
    assert info["node_id"] is None
    assert await replica.read_log(0, 10) == (b"", 0)


async def test_send_signal_stops_the_worker() -> None:
    replica = actor("import time; time.sleep(60)")
    await replica.start()

    await replica.send_signal(int(signal.SIGTERM))

    assert await replica.wait() == -signal.SIGTERM
    await replica.finish()


async def test_finish_kills_a_worker_that_still_runs() -> None:
    replica = actor("import time; time.sleep(60)")
    await replica.start()

    await replica.finish()

    assert await replica.wait() == -signal.SIGKILL


async def test_waiting_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="has not been started"):
        await actor("pass").wait()


def test_clipper_start_takes_the_placement_flags() -> None:
    args = build_parser().parse_args(
        ["start", "--placement", "ray", "--ray-address", "auto", "--rpc-host", "0.0.0.0",
         "--rpc-advertise-host", "10.0.0.5"]
    )  # fmt: skip

    settings = settings_from_args(args)

    assert (settings.placement, settings.ray_address) == ("ray", "auto")
    assert (settings.rpc_host, settings.rpc_advertise_host) == ("0.0.0.0", "10.0.0.5")


def test_ray_container_manager_starts_a_server_with_the_ray_placement(tmp_path: Path) -> None:
    manager = RayContainerManager("ray://head:10001", state_dir=tmp_path, rpc_host="0.0.0.0")

    settings = manager.settings

    assert (settings.placement, settings.ray_address) == ("ray", "ray://head:10001")
    assert (settings.rpc_host, settings.state_dir) == ("0.0.0.0", tmp_path)
