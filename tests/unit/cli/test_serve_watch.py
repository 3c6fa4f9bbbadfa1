"""`clipper serve`'s pieces: the target's name, the curl line, the file watch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clipper.cli.serve import ServeTarget, curl_line, watch
from clipper.core.config import Settings
from clipper.core.exceptions import InvalidName


def test_the_name_is_the_files_stem_made_valid() -> None:
    assert ServeTarget.parse("models/My_Model.py") == ServeTarget(
        Path("models/My_Model.py"), "predict", "my-model"
    )
    assert ServeTarget.parse("model.py:Scorer").function == "Scorer"
    assert ServeTarget.parse("model.py:Scorer").name == "model"
    assert ServeTarget.parse("x.py", name="chosen").name == "chosen"
    with pytest.raises(InvalidName):
        ServeTarget.parse("__.py")


def test_the_curl_line_sends_an_example_of_the_input_type() -> None:
    settings = Settings(host="127.0.0.1", query_port=1400)
    assert curl_line(settings, "m", "doubles") == (
        "curl -X POST -H 'Content-Type: application/json' -d '{\"input\": [1.0, 2.0, 3.0]}' "
        "http://127.0.0.1:1400/m/predict"
    )
    assert '"input": "hello"' in curl_line(settings, "m", "strings")


def test_a_change_is_acted_on_once_the_file_has_stayed_the_same_for_one_poll(
    tmp_path: Path,
) -> None:
    path = tmp_path / "model.py"
    path.write_text("a")
    changes: list[str] = []
    edits = iter(["ab", "abc", None, None, None, None])

    def sleep(_seconds: float) -> None:
        edit = next(edits)
        if edit is not None:
            path.write_text(edit)
            os.utime(path, ns=(len(edit), len(edit)))

    watch(path, lambda: changes.append(path.read_text()), sleep=sleep, max_polls=6)

    assert changes == ["abc"]  # "ab" was replaced before it had stayed for a poll; once only
