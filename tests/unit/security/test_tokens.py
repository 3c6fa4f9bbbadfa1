"""Admin and query tokens, the query-token guard, the bind check and TLS settings."""

from __future__ import annotations

import io
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.control.schema import DB_FILENAME
from clipper.control.store import Registry
from clipper.core.config import Settings
from clipper.core.exceptions import (
    ApplicationNotFound,
    ClipperError,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
)
from clipper.core.records import AppRecord
from clipper.core.types import InputType
from clipper.security import (
    AdminTokenFile,
    QueryTokenGuard,
    admin_token_path,
    bearer_token,
    check_bind,
    ensure_admin_token,
    hash_token,
    is_loopback,
    prepare_admin_token,
    read_admin_token,
    server_ssl_context,
    write_admin_token,
)

# -- the admin token file -------------------------------------------------------------------


def test_the_admin_token_file_is_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        token = write_admin_token(tmp_path / "state")
    finally:
        os.umask(old_umask)

    path = admin_token_path(tmp_path / "state")
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_admin_token(tmp_path / "state") == token
    assert len(token) >= 43


def test_ensure_creates_the_token_once(tmp_path: Path) -> None:
    first, created = ensure_admin_token(tmp_path)
    second, created_again = ensure_admin_token(tmp_path)

    assert (created, created_again) == (True, False)
    assert first == second


def test_a_missing_token_file_reads_as_none(tmp_path: Path) -> None:
    assert read_admin_token(tmp_path / "nowhere") is None
    assert AdminTokenFile(tmp_path / "nowhere").current() is None


def test_the_server_side_file_picks_up_a_rotation(tmp_path: Path) -> None:
    old = write_admin_token(tmp_path)
    token_file = AdminTokenFile(tmp_path)
    assert token_file.current() == old.encode()

    new = write_admin_token(tmp_path)

    assert token_file.current() == new.encode() != old.encode()


def test_a_deleted_token_file_accepts_no_token(tmp_path: Path) -> None:
    write_admin_token(tmp_path)
    token_file = AdminTokenFile(tmp_path)
    token_file.current()

    admin_token_path(tmp_path).unlink()

    assert token_file.current() is None


def test_tokens_are_hashed_with_sha256() -> None:
    assert hash_token("abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"authorization", b"Bearer abc")], b"abc"),
        ([(b"authorization", b"bearer   abc ")], b"abc"),
        ([(b"authorization", b"Basic abc")], None),
        ([(b"authorization", b"Bearer")], None),
        ([(b"x-other", b"Bearer abc")], None),
        ([], None),
    ],
)
def test_bearer_token_reads_only_the_bearer_scheme(
    headers: list[tuple[bytes, bytes]], expected: bytes | None
) -> None:
    assert bearer_token(headers) == expected


# -- announcing the token at first start ----------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_new_token_is_shown_once_on_a_terminal(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    first, again = Terminal(), Terminal()

    prepare_admin_token(settings, first)
    prepare_admin_token(settings, again)

    token = read_admin_token(tmp_path)
    assert token is not None
    assert token in first.getvalue()
    assert again.getvalue() == ""


def test_a_new_token_is_never_written_to_a_non_terminal(tmp_path: Path) -> None:
    console = io.StringIO()

    prepare_admin_token(Settings(state_dir=tmp_path), console)

    token = read_admin_token(tmp_path)
    assert token is not None
    assert token not in console.getvalue()
    assert str(admin_token_path(tmp_path)) in console.getvalue()


def test_no_token_is_created_with_admin_auth_off(tmp_path: Path) -> None:
    prepare_admin_token(Settings(state_dir=tmp_path, admin_auth=False), io.StringIO())

    assert read_admin_token(tmp_path) is None


# -- the bind check and TLS settings -------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("10.0.0.1", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_public_bind_without_admin_auth_is_refused() -> None:
    with pytest.raises(ClipperError, match="CLIPPER_ALLOW_INSECURE_BIND"):
        check_bind(Settings(host="0.0.0.0", admin_auth=False))


def test_a_public_bind_is_allowed_with_auth_or_when_explicitly_allowed() -> None:
    check_bind(Settings(host="0.0.0.0"))
    check_bind(Settings(host="0.0.0.0", admin_auth=False, allow_insecure_bind=True))
    check_bind(Settings(host="127.0.0.1", admin_auth=False))


def test_tls_needs_both_files(tmp_path: Path) -> None:
    assert server_ssl_context(Settings()) is None
    with pytest.raises(ClipperError, match="both"):
        server_ssl_context(Settings(tls_cert_file=tmp_path / "cert.pem"))


def test_unreadable_tls_files_fail_clearly(tmp_path: Path) -> None:
    settings = Settings(tls_cert_file=tmp_path / "cert.pem", tls_key_file=tmp_path / "key.pem")

    with pytest.raises(ClipperError, match="cannot load the TLS certificate"):
        server_ssl_context(settings)


# -- the query-token guard -------------------------------------------------------------------


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


@pytest.fixture
def guard() -> QueryTokenGuard:
    guard = QueryTokenGuard()
    guard.load(
        protected_apps={"secret", "other"},
        token_scopes={hash_token("good"): ["secret"], hash_token("elsewhere"): ["other"]},
        links={"secret": ("model",), "open": ("open-model",)},
    )
    return guard


def test_an_open_app_needs_no_token(guard: QueryTokenGuard) -> None:
    guard.require("open", [])
    guard.require_v2("open-model", [])


def test_a_token_scoped_to_the_app_passes(guard: QueryTokenGuard) -> None:
    guard.require("secret", bearer("good"))
    guard.require_v2("secret", bearer("good"))
    guard.require_v2("model", bearer("good"))  # a linked model, by its own V2 name


def test_a_missing_or_unknown_token_is_unauthorized(guard: QueryTokenGuard) -> None:
    with pytest.raises(Unauthorized):
        guard.require("secret", [])
    with pytest.raises(Unauthorized):
        guard.require("secret", bearer("made-up"))


def test_a_token_of_another_app_is_forbidden(guard: QueryTokenGuard) -> None:
    with pytest.raises(Forbidden):
        guard.require("secret", bearer("elsewhere"))
    with pytest.raises(Forbidden):
        guard.require_v2("model", bearer("elsewhere"))


def test_a_protected_app_without_tokens_admits_nobody() -> None:
    guard = QueryTokenGuard()
    guard.load({"secret"}, {}, {})

    with pytest.raises(Unauthorized):
        guard.require("secret", bearer("anything"))


# -- query tokens in the registry ------------------------------------------------------------


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry.open(tmp_path / "state") as opened:
        opened.add_app(AppRecord("a", InputType.DOUBLES, "-1", 100_000))
        yield opened


def test_the_registry_keeps_only_the_hash_of_a_query_token(
    registry: Registry, tmp_path: Path
) -> None:
    token_id = registry.create_query_token(hash_token("s3cret-token"), ["a"], "ci")

    assert registry.query_token_scopes() == {hash_token("s3cret-token"): ["a"]}
    assert registry.query_tokens()[0]["id"] == token_id
    assert "token_hash" not in registry.query_tokens()[0]
    raw = sqlite3.connect(tmp_path / "state" / DB_FILENAME).iterdump()
    assert not any("s3cret-token" in line for line in raw)


def test_query_tokens_need_existing_apps(registry: Registry) -> None:
    with pytest.raises(ApplicationNotFound):
        registry.create_query_token(hash_token("t"), ["ghost"])
    with pytest.raises(InvalidRequest):
        registry.create_query_token(hash_token("t"), [])


def test_revoking_a_query_token(registry: Registry) -> None:
    token_id = registry.create_query_token(hash_token("t"), ["a"])

    registry.revoke_query_token(token_id)

    assert registry.query_token_scopes() == {}
    with pytest.raises(NotFound):
        registry.revoke_query_token(token_id)


def test_the_query_auth_flag_goes_with_its_app(registry: Registry) -> None:
    registry.set_app_query_auth("a", True)
    assert registry.query_auth_apps() == {"a"}

    registry.delete_app("a")

    assert registry.query_auth_apps() == set()
    with pytest.raises(ApplicationNotFound):
        registry.set_app_query_auth("a", True)
