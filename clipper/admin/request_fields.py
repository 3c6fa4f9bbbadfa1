"""Reading fields out of admin request bodies, with Clipper's "Json error" on bad input."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson

from clipper.core.exceptions import InvalidRequest

__all__ = ["optional", "parse_body", "required", "string_list"]

T = TypeVar("T")
_MISSING = object()
# SQLite stores signed 64-bit integers; no setting of ours needs anything near that.
_INT_LIMIT = 2**53


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object (an empty body is `{}`)."""
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _check(body: dict[str, Any], key: str, value: Any, kind: type[T] | tuple[type, ...]) -> T:
    bad_bool = isinstance(value, bool) and kind in (int, float, (int, float))
    if bad_bool or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InvalidRequest(f"field {key!r} must be of type {names}, got {value!r:.60}")
    if isinstance(value, int) and not -_INT_LIMIT < value < _INT_LIMIT:
        raise InvalidRequest(f"field {key!r} is out of range: {value!r:.60}")
    return value  # type: ignore[return-value]


def required(body: dict[str, Any], key: str, kind: type[T] | tuple[type, ...]) -> T:
    """A field that must be present with the given type."""
    value = body.get(key, _MISSING)
    if value is _MISSING:
        raise InvalidRequest(f"missing field {key!r}")
    return _check(body, key, value, kind)


def optional(body: dict[str, Any], key: str, kind: type[T] | tuple[type, ...], default: T) -> T:
    """A field that may be absent or null (then `default`)."""
    value = body.get(key)
    if value is None:
        return default
    return _check(body, key, value, kind)


def string_list(body: dict[str, Any], key: str, *, default: list[str] | None = None) -> list[str]:
    """A list of strings (a single string is taken as a list of one)."""
    value = body.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"field {key!r} must be a list of strings")
    return value
