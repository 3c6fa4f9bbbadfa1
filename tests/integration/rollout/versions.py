"""Versions and waits the rollout tests share (the rollouts' own and those through several
frontends)."""

from __future__ import annotations

from typing import Any

from tests.integration.cluster import ServerHandle, wait_until


def answers(value: float, sleep_s: float = 0.002) -> Any:
    def predict(inputs: list[Any]) -> list[float]:
        import time as clock

        clock.sleep(sleep_s)
        return [value] * len(inputs)

    return predict


def raises_on_tenth(value: float) -> Any:
    def predict(inputs: list[Any]) -> list[float]:
        if any(int(x[0]) % 10 == 0 for x in inputs):
            raise ValueError("a bad input")
        return [value] * len(inputs)

    return predict


def ended(server: ServerHandle, model: str, timeout_s: float) -> dict[str, Any]:
    """The rollout's status once it ended."""

    def done() -> dict[str, Any] | None:
        status = server.admin.get_rollout(model)
        return status if status and status["state"] != "running" else None

    try:
        status: dict[str, Any] = wait_until(done, timeout_s, f"the rollout of {model} to end")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; its status: {server.admin.get_rollout(model)}") from None
    return status
