"""The environment a detached server starts with: every setting, secrets in clear."""

from __future__ import annotations

from pathlib import Path

from clipper.cli.launcher import _child_env
from clipper.core.config import Settings


def test_the_child_gets_every_setting_and_the_real_admin_token(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, query_port=4321, admin_token="s3cret-token")

    env = _child_env(settings)

    assert env["CLIPPER_QUERY_PORT"] == "4321"
    assert env["CLIPPER_STATE_DIR"] == str(tmp_path)
    assert env["CLIPPER_ADMIN_TOKEN"] == "s3cret-token"  # not pydantic's "**********"
