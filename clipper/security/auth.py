"""Bearer-token checks: the admin API's middleware and the query API's per-app guard.

Invariants: a token is compared with `hmac.compare_digest` (admin) or through its SHA-256
against every hash an app accepts, without stopping at the first match (query); a token
never reaches a log line or an error message; an app without `require_query_token` costs
the query path one dict lookup.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from clipper.core.exceptions import AuthError, Forbidden, Unauthorized
from clipper.http.errors import error_body, error_row
from clipper.security.tokens import AdminTokenFile

__all__ = [
    "PUBLIC_ADMIN_PATHS",
    "AdminAuth",
    "QueryTokenGuard",
    "auth_headers",
    "bearer_token",
]

Headers = list[tuple[bytes, bytes]]
AsgiApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

PUBLIC_ADMIN_PATHS = frozenset({"/", "/admin/ping", "/healthz", "/openapi.json", "/favicon.ico"})
"""Admin-port paths answered to GET/HEAD without a token (besides `/dashboard/...`)."""
_PUBLIC_PREFIX = "/dashboard"
_AUTHENTICATE = (b"www-authenticate", b'Bearer realm="clipper"')
_JSON = (b"content-type", b"application/json")


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            token = token.strip()
            if scheme.lower() == b"bearer" and token:
                return token
            return None
    return None


def auth_headers(exc: AuthError) -> Headers:
    """Headers of a 401 or 403 answer (401 names the scheme, RFC 6750)."""
    return [_JSON, _AUTHENTICATE] if isinstance(exc, Unauthorized) else [_JSON]


def _is_public(method: str, path: str) -> bool:
    if method not in ("GET", "HEAD"):
        return False
    return path in PUBLIC_ADMIN_PATHS or path == _PUBLIC_PREFIX or path.startswith("/dashboard/")


class AdminAuth:
    """ASGI middleware: every admin request but the public GETs needs the admin token.

    A request without it is answered 401 before its body is read, so it changes nothing.
    """

    def __init__(self, app: AsgiApp, token_file: AdminTokenFile) -> None:
        self._app = app
        self._token_file = token_file

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] != "http" or _is_public(scope["method"], scope["path"]):
            await self._app(scope, receive, send)
            return
        presented = bearer_token(scope["headers"])
        expected = self._token_file.current()
        if presented is None or expected is None:
            await _deny(send, Unauthorized("this request needs the admin token (Bearer)"))
        elif not hmac.compare_digest(presented, expected):
            await _deny(send, Unauthorized("the bearer token is not the admin token"))
        else:
            await self._app(scope, receive, send)


async def _deny(send: Any, exc: Unauthorized) -> None:
    body = error_body(exc)
    headers = [*auth_headers(exc), (b"content-length", str(len(body)).encode())]
    status = error_row(exc).http_status
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).hexdigest().encode()


class QueryTokenGuard:
    """Which names need a query token, and the token hashes each accepts.

    `apps` holds the apps with `require_query_token`; `v2_names` the names under which the
    Open Inference Protocol reaches them: the app itself and every model linked to it.
    Both are replaced whole by `load` (readers never see a half-built table).
    """

    __slots__ = ("_known", "apps", "v2_names")

    def __init__(self) -> None:
        self.apps: dict[str, tuple[bytes, ...]] = {}
        self.v2_names: dict[str, tuple[bytes, ...]] = {}
        self._known: frozenset[bytes] = frozenset()

    def load(
        self,
        protected_apps: Iterable[str],
        token_scopes: Mapping[str, Iterable[str]],
        links: Mapping[str, Iterable[str]],
    ) -> None:
        """Rebuild from the protected apps, each token hash's apps and the app links."""
        accepted: dict[str, set[bytes]] = {name: set() for name in protected_apps}
        for token_hash, scope in token_scopes.items():
            for app in scope:
                if app in accepted:
                    accepted[app].add(token_hash.encode())
        v2_names: dict[str, set[bytes]] = {}
        for app, hashes in accepted.items():
            for name in (app, *links.get(app, ())):
                v2_names.setdefault(name, set()).update(hashes)
        self.apps = {app: tuple(sorted(hashes)) for app, hashes in accepted.items()}
        self.v2_names = {name: tuple(sorted(hashes)) for name, hashes in v2_names.items()}
        self._known = frozenset(token_hash.encode() for token_hash in token_scopes)

    def require(self, app: str, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Raise Unauthorized or Forbidden unless `app` is open or the request's token
        is scoped to it. The one dict lookup below is all an open app pays."""
        accepted = self.apps.get(app)
        if accepted is not None:
            self._verify(accepted, headers, app)

    def require_v2(self, name: str, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Like `require`, for an Open Inference Protocol model or app name."""
        accepted = self.v2_names.get(name)
        if accepted is not None:
            self._verify(accepted, headers, name)

    def _verify(
        self, accepted: tuple[bytes, ...], headers: Iterable[tuple[bytes, bytes]], name: str
    ) -> None:
        presented = bearer_token(headers)
        if presented is None:
            raise Unauthorized(f"'{name}' needs a query token (Authorization: Bearer)")
        digest = _digest(presented)
        matched = False
        for candidate in accepted:  # no early exit: the time does not tell which matched
            matched |= hmac.compare_digest(candidate, digest)
        if matched:
            return
        if digest in self._known:
            raise Forbidden(f"the query token is not scoped to '{name}'")
        raise Unauthorized("the bearer token is not a valid query token")
