"""Admin operations on query tokens and on the apps that require them.

A query token is shown once, in the answer that creates it; the registry keeps only its
SHA-256. After any change the server's `QueryTokenGuard` is rebuilt (`reload_guard`).
"""

from __future__ import annotations

from typing import Any

from clipper.admin.request_fields import optional, required, string_list
from clipper.control.service import ClusterService
from clipper.core.exceptions import InvalidRequest
from clipper.security.auth import QueryTokenGuard
from clipper.security.tokens import hash_token, new_token

__all__ = [
    "create_query_token",
    "get_query_tokens",
    "reload_guard",
    "revoke_query_token",
    "set_app_query_auth",
    "with_query_auth",
]

Body = dict[str, Any]
MAX_LABEL_CHARS = 200


async def create_query_token(service: ClusterService, body: Body) -> Any:
    """`{"apps": [...], "label"?}` -> `{"id", "token", "apps"}`."""
    apps = string_list(body, "apps")
    label = optional(body, "label", str, "")
    if len(label) > MAX_LABEL_CHARS:
        raise InvalidRequest(f"field 'label' is longer than {MAX_LABEL_CHARS} characters")
    token = new_token()
    token_id = service.registry.create_query_token(hash_token(token), apps, label)
    await service.announce()  # every query frontend takes it before we answer
    return {"id": token_id, "token": token, "apps": sorted(set(apps))}


async def get_query_tokens(service: ClusterService, body: Body) -> Any:
    """Every token's id, apps, label and creation time (never the token)."""
    return service.registry.query_tokens()


async def revoke_query_token(service: ClusterService, body: Body) -> Any:
    """`{"id": n}`: the token stops working at once."""
    token_id = required(body, "id", int)
    service.registry.revoke_query_token(token_id)
    await service.announce()
    return {"id": token_id}


async def set_app_query_auth(service: ClusterService, body: Body) -> Any:
    """`{"app_name", "require_query_token": bool}`."""
    app = required(body, "app_name", str)
    flag = required(body, "require_query_token", bool)
    service.registry.set_app_query_auth(app, flag)
    await service.announce()
    return {"app_name": app, "require_query_token": flag}


def with_query_auth(service: ClusterService, info: Any) -> Any:
    """An app info dict (or a list of them) with its `require_query_token` flag added."""
    protected = service.registry.query_auth_apps()
    if isinstance(info, dict) and "name" in info:
        return {**info, "require_query_token": info["name"] in protected}
    if isinstance(info, list):
        return [with_query_auth_one(item, protected) for item in info]
    return info


def with_query_auth_one(info: Any, protected: set[str]) -> Any:
    """`with_query_auth` for one list item (names stay names)."""
    if isinstance(info, dict) and "name" in info:
        return {**info, "require_query_token": info["name"] in protected}
    return info


def reload_guard(guard: QueryTokenGuard, service: ClusterService) -> None:
    """Rebuild the guard from the registry and the current links."""
    registry = service.registry
    guard.load(registry.query_auth_apps(), registry.query_token_scopes(), service.snapshot.links)
