"""Logs read a page at a time: bounded replies, whole characters, every byte once."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper.admin.log_pages import MAX_PAGE_BYTES, read_log_pages
from clipper.core.exceptions import InvalidRequest, NotFound


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    (tmp_path / "server.log").write_text("server line\n" * 100)
    (tmp_path / "m-1-0.log").write_text("ü€😀" * 50)  # 2-, 3- and 4-byte characters
    (tmp_path / "m-1-0.log.1").write_text("a rotated backup: not listed")
    return tmp_path


def test_a_reply_holds_at_most_max_bytes_of_all_logs(logs: Path) -> None:
    page = read_log_pages(logs, None, 0, 1000)["logs"]
    assert [entry["name"] for entry in page] == ["m-1-0.log", "server.log"]
    assert sum(len(entry["content"].encode()) for entry in page) <= 1000
    assert page[0]["size"] == 450
    assert page[0]["next_offset"] == 450  # the first log whole, the second in part
    assert page[1]["next_offset"] == 550
    assert page[1]["content"] == ("server line\n" * 100)[:550]


@pytest.mark.parametrize("max_bytes", [4, 5, 7, 64])
def test_paging_through_a_log_gives_every_character_once(logs: Path, max_bytes: int) -> None:
    text, offset = [], 0
    for _ in range(1000):
        [entry] = read_log_pages(logs, "m-1-0.log", offset, max_bytes)["logs"]
        assert len(entry["content"].encode()) <= max_bytes
        text.append(entry["content"])
        assert entry["next_offset"] > offset  # always advances
        offset = entry["next_offset"]
        if offset == entry["size"]:
            break
    assert "".join(text) == "ü€😀" * 50


def test_an_offset_past_the_end_reads_nothing(logs: Path) -> None:
    [entry] = read_log_pages(logs, "server.log", 10**9, 100)["logs"]
    assert (entry["content"], entry["offset"], entry["next_offset"]) == ("", 1200, 1200)


@pytest.mark.parametrize(
    ("name", "offset", "max_bytes", "error", "match"),
    [
        ("nope.log", 0, 100, NotFound, "No log named 'nope.log'"),
        (None, -1, 100, InvalidRequest, "offset"),
        (None, 0, 3, InvalidRequest, "max_bytes"),
        (None, 0, MAX_PAGE_BYTES + 1, InvalidRequest, "max_bytes"),
        ("../secret.log", 0, 100, NotFound, "No log named"),
    ],
)
def test_bad_pages_are_refused(
    logs: Path, name: str | None, offset: int, max_bytes: int, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        read_log_pages(logs, name, offset, max_bytes)
