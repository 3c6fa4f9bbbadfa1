"""The worker's capped log: it rotates by rename before a write would pass its cap, keeps
`backups` older files, and cuts a write larger than the cap into files of the cap."""

from __future__ import annotations

from pathlib import Path

from clipper.worker.output_log import CappedLog


def sizes(directory: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in sorted(directory.iterdir())}


def test_it_rotates_before_a_write_would_pass_the_cap(tmp_path: Path) -> None:
    log = CappedLog(tmp_path / "m.log", max_bytes=10, backups=2)
    for chunk in (b"aaaaaa", b"bbbbbb", b"cccccc", b"dddddd"):
        log.write(chunk)
    log.close()

    assert sizes(tmp_path) == {"m.log": 6, "m.log.1": 6, "m.log.2": 6}  # a's file dropped
    assert (tmp_path / "m.log").read_bytes() == b"dddddd"
    assert (tmp_path / "m.log.2").read_bytes() == b"bbbbbb"


def test_a_write_larger_than_the_cap_is_cut_into_files_of_the_cap(tmp_path: Path) -> None:
    log = CappedLog(tmp_path / "m.log", max_bytes=4, backups=5)
    log.write(b"0123456789")
    log.close()

    assert (tmp_path / "m.log").read_bytes() == b"89"
    assert (tmp_path / "m.log.1").read_bytes() == b"4567"
    assert (tmp_path / "m.log.2").read_bytes() == b"0123"


def test_it_continues_a_file_that_exists(tmp_path: Path) -> None:
    (tmp_path / "m.log").write_bytes(b"early traceback\n")
    log = CappedLog(tmp_path / "m.log", max_bytes=20, backups=1)
    log.write(b"more\n")
    log.write(b"and more\n")
    log.close()

    assert (tmp_path / "m.log.1").read_bytes() == b"early traceback\n"  # 16 + 5 > 20
    assert (tmp_path / "m.log").read_bytes() == b"more\nand more\n"


def test_without_backups_the_file_starts_over(tmp_path: Path) -> None:
    log = CappedLog(tmp_path / "m.log", max_bytes=5, backups=0)
    log.write(b"abcde")
    log.write(b"fg")
    log.close()

    assert sizes(tmp_path) == {"m.log": 2}
