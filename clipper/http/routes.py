"""One route table for a port: the routes of its frontends, compiled once.

A pattern is a path of literal segments and `{name}` parameters; a parameter matches any one
segment. A request's path is split on "/" with empty segments dropped (`/v2/models/m/` is
`/v2/models/m`). Of the patterns that match a path, the most specific wins: compared segment
by segment from the left, a literal beats a parameter. The winner's route for the request's
method answers; a pattern that matches only under other methods answers 405 with `Allow`;
no pattern, 404. Each frontend's routes come as a `RouteGroup` that says how it answers
errors, so each keeps its error shape; a 404 takes the shape of the group with the longest
prefix of the path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clipper.core.exceptions import ClipperError, MethodNotAllowed, NotFound
from clipper.http.reply import Headers, Reply

__all__ = [
    "DirectDone",
    "DirectHandler",
    "ErrorReply",
    "Handler",
    "Match",
    "Refusal",
    "Request",
    "Route",
    "RouteGroup",
    "RouteTable",
]

DirectReply = tuple[int, Headers | bytes, bytes]
"""What a direct handler answers: see `clipper.http.http11.DirectReply`."""
DirectDone = Callable[[DirectReply], None]
ErrorReply = Callable[[BaseException], Reply]


class Request:
    """One request as a handler sees it: the ASGI scope and receive, and the path's
    parameters."""

    __slots__ = ("params", "receive", "scope")

    def __init__(self, scope: dict[str, Any], receive: Any, params: dict[str, str]) -> None:
        self.scope = scope
        self.receive = receive
        self.params = params

    @property
    def headers(self) -> Headers:
        headers: Headers = self.scope["headers"]
        return headers


Handler = Callable[[Request], Awaitable[Reply]]
DirectHandler = Callable[[Mapping[str, str], Headers, bytes, DirectDone], None]
"""A route's form for the lean server's direct path: the path's parameters, the headers and
the whole body; calls `done` exactly once, at once or later, with the reply."""


@dataclass(frozen=True, slots=True)
class Route:
    """`method pattern` answered by `handler`; `direct`, when given, answers the same
    request without a task or ASGI messages (see `RouteTable.direct`)."""

    method: str
    pattern: str
    handler: Handler
    direct: DirectHandler | None = None


@dataclass(frozen=True, slots=True)
class RouteGroup:
    """One frontend's routes, and the reply it gives for an error (its shape)."""

    routes: Sequence[Route]
    error_reply: ErrorReply
    prefix: str = "/"
    """A path under it that no route matches gets this group's 404 (the longest prefix wins)."""


@dataclass(slots=True)
class _Pattern:
    """A compiled pattern: its literal segments (None for a parameter) and its routes."""

    literals: tuple[str | None, ...]
    params: tuple[tuple[int, str], ...]  # (segment index, parameter name)
    routes: dict[str, tuple[Route, ErrorReply]] = field(default_factory=dict)

    def matches(self, segments: list[str]) -> bool:
        for literal, segment in zip(self.literals, segments, strict=True):
            if literal is not None and literal != segment:
                return False
        return True

    def arguments(self, segments: list[str]) -> dict[str, str]:
        return {name: segments[index] for index, name in self.params}


class Match:
    """A request's route, the path's parameters and how its errors are answered."""

    __slots__ = ("error_reply", "params", "route")

    def __init__(self, route: Route, params: dict[str, str], error_reply: ErrorReply) -> None:
        self.route = route
        self.params = params
        self.error_reply = error_reply


class Refusal:
    """The 404 or 405 of a request no route answers."""

    __slots__ = ("allow", "error", "error_reply")

    def __init__(self, error: ClipperError, error_reply: ErrorReply, allow: str = "") -> None:
        self.error = error
        self.error_reply = error_reply
        self.allow = allow

    def reply(self) -> Reply:
        reply = self.error_reply(self.error)
        if self.allow:
            reply.headers = [*reply.headers, (b"allow", self.allow.encode())]
        return reply


class RouteTable:
    """The routes of one port, compiled once; `dispatch` answers a request."""

    def __init__(self, groups: Sequence[RouteGroup]) -> None:
        if not groups:
            raise ValueError("a route table needs at least one group")
        by_shape: dict[tuple[str | None, ...], _Pattern] = {}
        for group in groups:
            for route in group.routes:
                pattern = _compile(route.pattern)
                known = by_shape.setdefault(pattern.literals, pattern)
                if known.params != pattern.params:
                    raise ValueError(f"{route.pattern} names its parameters unlike another route")
                if route.method in known.routes:
                    raise ValueError(f"two routes for {route.method} {route.pattern}")
                known.routes[route.method] = (route, group.error_reply)
        self._by_length: dict[int, list[_Pattern]] = {}
        for pattern in by_shape.values():
            self._by_length.setdefault(len(pattern.literals), []).append(pattern)
        for patterns in self._by_length.values():  # the most specific first
            patterns.sort(key=lambda p: tuple(literal is None for literal in p.literals))
        self._prefixes = sorted(
            ((group.prefix, group.error_reply) for group in groups),
            key=lambda prefix: len(prefix[0]),
            reverse=True,
        )

    def match(self, method: str, path: str) -> Match | Refusal:
        """The route answering `method path`, or the 404 or 405 refusal."""
        segments = _segments(path)
        for pattern in self._by_length.get(len(segments), ()):
            if pattern.matches(segments):
                found = pattern.routes.get(method)
                if found is not None:
                    return Match(found[0], pattern.arguments(segments), found[1])
                allow = ", ".join(sorted(pattern.routes))
                error_reply = next(iter(pattern.routes.values()))[1]
                error = MethodNotAllowed(f"method {method} not allowed here (use {allow})")
                return Refusal(error, error_reply, allow)
        return Refusal(NotFound(f"no route for {method} {path}"), self._error_reply_for(path))

    async def dispatch(self, scope: dict[str, Any], receive: Any) -> Reply:
        """The reply to one ASGI HTTP request: its route's, or its group's error reply."""
        found = self.match(scope["method"], scope["path"])
        if isinstance(found, Refusal):
            return found.reply()
        try:
            return await found.route.handler(Request(scope, receive, found.params))
        except ClipperError as exc:
            return found.error_reply(exc)

    def direct(self, method: str, path: str) -> tuple[DirectHandler, dict[str, str]] | None:
        """The direct handler of `method path` and its parameters, when its route has one."""
        found = self.match(method, path)
        if isinstance(found, Refusal) or found.route.direct is None:
            return None
        return found.route.direct, found.params

    def _error_reply_for(self, path: str) -> ErrorReply:
        for prefix, error_reply in self._prefixes:
            if path.startswith(prefix) or path == prefix.rstrip("/"):
                return error_reply
        return self._prefixes[-1][1]


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _compile(pattern: str) -> _Pattern:
    if not pattern.startswith("/"):
        raise ValueError(f"a route pattern starts with '/': {pattern!r}")
    literals: list[str | None] = []
    params: list[tuple[int, str]] = []
    for index, segment in enumerate(_segments(pattern)):
        if segment.startswith("{") and segment.endswith("}"):
            name = segment[1:-1]
            if not name.isidentifier() or name in dict(params).values():
                raise ValueError(f"bad parameter {segment!r} in {pattern!r}")
            literals.append(None)
            params.append((index, name))
        else:
            literals.append(segment)
    return _Pattern(tuple(literals), tuple(params))
