"""The local placement's GPUs, on fake devices (`gpus` setting, CLIPPER_GPUS): what each
worker sees in CUDA_VISIBLE_DEVICES, packing, refusal while full, release on scale-down and
on crash, and the GPU metrics."""

from __future__ import annotations

import os
import signal
from typing import Any

import httpx
import pytest

from clipper.artifacts.python import closure_artifact
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, metric, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def visible_devices(inputs: list[Any]) -> list[str]:
    return [f"visible:{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}" for _ in inputs]


def worker_env(pid: int) -> dict[str, str]:
    """The environment a worker started with, as /proc shows it."""
    with open(f"/proc/{pid}/environ", "rb") as file:
        items = file.read().decode().split("\0")
    return dict(item.split("=", 1) for item in items if "=" in item)


def replicas(server: ServerHandle, model: str) -> list[dict[str, Any]]:
    found = [r for r in server.admin.get_all_containers(verbose=True) if r["model_name"] == model]
    server.worker_pids.update(r["pid"] for r in found if r["pid"])
    return sorted(found, key=lambda r: r["model_replica_id"])


def devices_of(server: ServerHandle, model: str) -> list[str]:
    """CUDA_VISIBLE_DEVICES of each connected replica of `model`, by replica number."""
    return [
        worker_env(r["pid"]).get("CUDA_VISIBLE_DEVICES", "unset")
        for r in replicas(server, model)
        if r["connected"]
    ]


def unschedulable(server: ServerHandle, model: str) -> list[dict[str, Any]]:
    return [r for r in replicas(server, model) if r["state"] == "unschedulable"]


def test_whole_gpus_one_each_then_a_waiting_replica_starts_on_scale_down(
    configured_server: ServerFactory,
) -> None:
    server = configured_server(gpus="2")
    deploy(server, "whole", visible_devices, replicas=2, resources={"num_gpus": 1})

    assert sorted(devices_of(server, "whole")) == ["0", "1"]
    assert server.predict("whole", {"input": [1.0]}).json()["output"] in ("visible:0", "visible:1")
    assert metric(server, "clipper_gpu_allocated_fraction", gpu="1") == 1.0

    admin = server.admin
    admin.add_app("late", "doubles", default_output="-1", latency_slo_micros=1_000_000)
    admin.upload_artifact("late", "1", closure_artifact(visible_devices))
    admin.add_model("late", "1", "doubles", num_replicas=0, resources={"num_gpus": 1})
    admin.set_num_replicas("late", 1)  # returns at once
    pending = wait_until(lambda: unschedulable(server, "late"), 15, "late to be unschedulable")
    assert pending[0]["reason"] == (
        "waiting for free GPUs: it asks for 1 GPU (whole, unshared devices); free: GPU 0 0, GPU 1 0"
    )
    assert pending[0]["pid"] is None

    admin.set_num_replicas("whole", 1)  # frees replica 1's device, GPU 1
    admin.wait_model_ready("late", "1", timeout_s=15)
    assert devices_of(server, "late") == ["1"]
    assert devices_of(server, "whole") == ["0"]


def test_quarters_pack_onto_one_gpu_and_others_see_none(
    configured_server: ServerFactory,
) -> None:
    server = configured_server(gpus='[{"name": "fake-a100", "memory": 40000000000}, {}]')
    deploy(server, "quarter", visible_devices, replicas=4, resources={"num_gpus": 0.25})
    deploy(server, "cpu", visible_devices)

    assert devices_of(server, "quarter") == ["0"] * 4
    pids = [r["pid"] for r in replicas(server, "quarter")]
    assert {worker_env(pid)["CLIPPER_GPU_FRACTION"] for pid in pids} == {"0.25"}
    assert server.predict("cpu", {"input": [1.0]}).json()["output"] == "visible:"
    assert metric(server, "clipper_gpu_allocated_fraction", gpu="0") == 1.0
    assert metric(server, "clipper_gpu_allocated_fraction", gpu="1") == 0.0
    assert metric(server, "clipper_gpu_replicas", gpu="0") == 4
    assert metric(server, "clipper_gpu_memory_total_bytes", gpu="0") == 40e9
    assert metric(server, "clipper_replica_gpu_fraction", replica="quarter:1:3", gpu="0") == 0.25


def test_a_crashed_replica_gives_its_gpu_back_and_gets_it_again(
    configured_server: ServerFactory,
) -> None:
    server = configured_server(gpus="1", restart_backoff_initial_s=0.1)
    deploy(server, "crashy", visible_devices, resources={"num_gpus": 1})
    (first,) = replicas(server, "crashy")

    os.kill(first["pid"], signal.SIGKILL)
    restarted = wait_until(
        lambda: [r for r in replicas(server, "crashy")
                 if r["connected"] and r["pid"] not in (None, first["pid"])],
        15, "the crashed replica to be back",
    )  # fmt: skip

    assert worker_env(restarted[0]["pid"])["CUDA_VISIBLE_DEVICES"] == "0"  # one GPU only
    assert restarted[0]["restarts"] == 1
    assert metric(server, "clipper_gpu_replicas", gpu="0") == 1


def test_no_gpus_a_gpu_replica_is_unschedulable_and_the_metrics_are_there(
    configured_server: ServerFactory,
) -> None:
    server = configured_server(gpus="0")
    admin = server.admin
    admin.add_app("needy", "doubles", default_output="-1", latency_slo_micros=1_000_000)
    admin.upload_artifact("needy", "1", closure_artifact(visible_devices))
    admin.add_model("needy", "1", "doubles", num_replicas=0, resources={"num_gpus": 0.5})
    admin.set_num_replicas("needy", 1)

    pending = wait_until(lambda: unschedulable(server, "needy"), 15, "needy to be unschedulable")
    assert "this machine has no GPU" in pending[0]["reason"]
    text = httpx.get(f"{server.query_url}/metrics", timeout=10).text
    for family in ("clipper_gpu_allocated_fraction", "clipper_gpu_replicas",
                   "clipper_gpu_utilization_ratio", "clipper_gpu_memory_used_bytes"):  # fmt: skip
        assert f"# TYPE {family} gauge" in text
