"""Limits on what a client may send: values built once from the settings, passed down.

`InputLimits` bound a decoded query (both Clipper's format and the Open Inference
Protocol); `HttpLimits` bound a connection of the query port's HTTP/1.1 server. Each limit
is a setting (`clipper.core.config.Settings`, named in the error a client gets) with a safe
default. Sizes over a limit answer 413, structure over a limit 400, headers over a limit
431, slow clients 408 (then the connection closes).

Checks are O(1) per request or per input on the hot path (a length, a shape product); the
JSON nesting check walks only values no typed decoder validates (unknown keys, V2
`parameters`), so a valid request pays nothing for it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from clipper.core.exceptions import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from clipper.core.config import Settings

__all__ = [
    "HttpLimits",
    "InputLimits",
    "check_nesting",
    "http_limits",
    "input_limits",
    "json_error",
]


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Bounds of one query's inputs."""

    max_batch_inputs: int = 4096
    max_string_bytes: int = 4 * 1024 * 1024
    max_tensor_elements: int = 16 * 1024 * 1024
    max_json_depth: int = 32

    def check_batch(self, length: int) -> None:
        """PayloadTooLarge when a request holds more than `max_batch_inputs` inputs."""
        if length > self.max_batch_inputs:
            raise PayloadTooLarge(
                f"the request holds {length} inputs; the limit is {self.max_batch_inputs} "
                "(setting max_batch_inputs)"
            )

    def check_string(self, size: int) -> None:
        """PayloadTooLarge when one string or bytes input is over `max_string_bytes`."""
        if size > self.max_string_bytes:
            raise PayloadTooLarge(
                f"an input of {size} bytes is over the limit of {self.max_string_bytes} "
                "bytes (setting max_string_bytes)"
            )

    def check_elements(self, count: int) -> None:
        """PayloadTooLarge when one input has more than `max_tensor_elements` elements."""
        if count > self.max_tensor_elements:
            raise PayloadTooLarge(
                f"an input of {count} elements is over the limit of "
                f"{self.max_tensor_elements} (setting max_tensor_elements)"
            )


def check_nesting(value: Any, limits: InputLimits, depth: int = 1) -> None:
    """InvalidInput when `value` (at nesting `depth`) nests deeper than `max_json_depth`.

    Stops at the first level past the limit, so its cost is bounded by the value's size
    within the limit."""
    if depth > limits.max_json_depth:
        raise InvalidInput(_too_deep(limits.max_json_depth))
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return
    for item in value:
        if isinstance(item, (dict, list)):
            check_nesting(item, limits, depth + 1)


def json_error(exc: Exception, limits: InputLimits) -> InvalidInput:
    """The InvalidInput for an orjson decode error (its own nesting bound is 1024)."""
    if "depth limit" in str(exc) or "recursion" in str(exc).lower():
        return InvalidInput(_too_deep(limits.max_json_depth))
    return InvalidInput(f"malformed JSON: {exc}")


def _too_deep(limit: int) -> str:
    return f"JSON nested deeper than {limit} levels (setting max_json_depth)"


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Bounds of the query port's HTTP/1.1 connections."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    max_connections: int = 2048
    max_connections_per_client: int | None = None
    """None: half of `max_connections` (see clipper.http.connection_gate)."""
    max_buffered_body_bytes: int | None = None
    """None: an eighth of the machine's memory, at least 64 MiB (clipper.http.body_budget)."""
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    keep_alive_timeout_s: float = 30.0


def input_limits(settings: Settings) -> InputLimits:
    """The input limits the settings ask for."""
    return InputLimits(**_same_named(InputLimits, settings))


def http_limits(settings: Settings) -> HttpLimits:
    """The connection limits the settings ask for."""
    return HttpLimits(**_same_named(HttpLimits, settings))


def _same_named(limits: type[Any], settings: Settings) -> dict[str, Any]:
    """The settings named like the limit class's fields (each limit is a setting)."""
    return {limit.name: getattr(settings, limit.name) for limit in fields(limits)}
