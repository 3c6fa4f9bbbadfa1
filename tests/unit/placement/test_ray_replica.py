"""Unit tests for RayReplica's supervision, against a fake actor (no Ray cluster)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from ray.exceptions import ActorDiedError, ActorUnavailableError

from clipper.core.types import InputType, ModelId, ReplicaId
from clipper.placement import ray as ray_placement
from clipper.placement.base import ReplicaLaunch

Handler = Callable[..., Coroutine[Any, Any, Any]]


class FakeRef:
    """An ObjectRef look-alike: awaitable, with `future()`."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self._task = task

    def future(self) -> concurrent.futures.Future[Any]:
        result: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def copy(task: asyncio.Task[Any]) -> None:
            if task.exception() is not None:
                result.set_exception(task.exception())  # type: ignore[arg-type]
            else:
                result.set_result(task.result())

        self._task.add_done_callback(copy)
        return result

    def __await__(self) -> Any:
        return self._task.__await__()


class FakeActor:
    """Methods answer from `handlers`; `killed` is set by the patched ray.kill."""

    def __init__(self, **handlers: Handler) -> None:
        self.handlers = handlers
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.killed = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        actor = self

        class Method:
            def remote(self, *args: Any) -> FakeRef:
                actor.calls.append((name, args))
                return FakeRef(asyncio.ensure_future(actor.handlers[name](*args)))

        return Method()


async def never() -> Any:
    await asyncio.Event().wait()


async def started() -> dict[str, Any]:
    return {"pid": 4242, "node_ip": "127.0.0.3", "node_id": "abc", "hostname": "h"}


async def no_log(offset: int, limit: int) -> tuple[bytes, int]:
    return b"", offset


async def nothing(*args: Any) -> None:
    return None


@pytest.fixture
def launch(tmp_path: Path) -> ReplicaLaunch:
    return ReplicaLaunch(
        ReplicaId(ModelId("m", "1"), 0), InputType.DOUBLES, tmp_path / "artifact",
        "tcp://127.0.0.1:7000", tmp_path / "logs" / "m-1-0.log", 1.0,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def fake_kill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_placement.ray, "kill", lambda actor, no_restart: actor.killed.set())


async def no_reason(actor: Any, request: Any) -> None:
    return None


async def test_the_workers_exit_code_and_output_come_back(launch: ReplicaLaunch) -> None:
    output = [b"loaded\n"]

    async def read_log(offset: int, limit: int) -> tuple[bytes, int]:
        chunk = output.pop() if output else b""
        return chunk, offset + len(chunk)

    async def exits() -> int:
        await asyncio.sleep(0.05)
        return 3

    actor = FakeActor(start=started, wait=exits, read_log=read_log, finish=nothing)
    replica = ray_placement.RayReplica(actor, launch, no_reason)

    assert await replica.wait() == 3
    assert launch.log_path.read_bytes() == b"loaded\n"
    assert actor.killed.is_set()
    assert ("finish", ()) in actor.calls


async def test_a_dead_actor_is_a_lost_replica_with_the_reason_in_its_log(
    launch: ReplicaLaunch,
) -> None:
    async def dies() -> int:
        raise ActorDiedError()

    actor = FakeActor(start=started, wait=dies, read_log=no_log, finish=nothing)
    replica = ray_placement.RayReplica(actor, launch, no_reason)

    assert await replica.wait() == ray_placement.LOST_EXIT_CODE
    assert b"clipper: replica m:1:0 lost:" in launch.log_path.read_bytes()


async def test_an_unavailable_actor_is_asked_again(
    launch: ReplicaLaunch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray_placement, "UNAVAILABLE_RETRY_S", 0.01)
    answers: list[Any] = [ActorUnavailableError("socket closed", None), 0]

    async def wait() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return int(answer)

    actor = FakeActor(start=started, wait=wait, read_log=no_log, finish=nothing)

    assert await ray_placement.RayReplica(actor, launch, no_reason).wait() == 0
    assert [name for name, _ in actor.calls].count("wait") == 2


async def test_a_pending_replica_reports_why_and_terminating_it_kills_the_actor(
    launch: ReplicaLaunch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray_placement, "SCHEDULE_CHECK_INTERVAL_S", 0.01)
    start: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def starts() -> Any:
        return await start

    explained = asyncio.Semaphore(0)

    async def explain(actor: Any, request: Any) -> str:
        explained.release()
        return "no GPU"

    actor = FakeActor(start=starts, read_log=no_log)
    replica = ray_placement.RayReplica(actor, launch, explain)
    for _ in range(2):  # the second explanation follows the first one's assignment
        await explained.acquire()
    assert replica.placement_details().unschedulable == "no GPU"

    replica.terminate()
    await actor.killed.wait()
    start.set_exception(ActorDiedError())

    assert await replica.wait() == ray_placement.START_FAILED_EXIT_CODE
    assert replica.placement_details().unschedulable is None
    assert not launch.log_path.exists()


async def test_kill_signals_the_worker_then_kills_an_unanswering_actor(
    launch: ReplicaLaunch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray_placement, "KILL_GRACE_S", 0.05)
    forwarding = asyncio.Event()

    async def read_log(offset: int, limit: int) -> tuple[bytes, int]:
        forwarding.set()  # logs are forwarded once the worker has started
        return b"", offset

    actor = FakeActor(start=started, wait=never, read_log=read_log, send_signal=nothing)
    replica = ray_placement.RayReplica(actor, launch, no_reason)
    await forwarding.wait()

    replica.kill()
    await asyncio.wait_for(actor.killed.wait(), 5)
    await replica.aclose()

    assert ("send_signal", (9,)) in actor.calls
    assert await replica.wait() == ray_placement.LOST_EXIT_CODE
