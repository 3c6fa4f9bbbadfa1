"""The peers benchmark's heavier workloads (issue 27): the models, the bare model's
in-process ceiling, and how the report and the new peers use them (no servers)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import orjson

from benchmarks.peers import model
from benchmarks.peers.bare import measure_ceiling
from benchmarks.peers.load import LoadRun
from benchmarks.peers.report import render_markdown, targets, throughput_rows
from benchmarks.peers.results import (
    CaseResult,
    Ceiling,
    Report,
    ServedResult,
    load_report,
    save_report,
)
from benchmarks.peers.system import WORKLOADS, expected_output
from benchmarks.peers.systems import SYSTEMS
from benchmarks.peers.triton import triton_environment
from benchmarks.peers.v2 import v2_label, v2_request


def _case(concurrency: int, rate: float) -> CaseResult:
    return CaseResult(concurrency, [LoadRun(10.0, int(rate * 10), 0, 0, 5.0, 20.0)], [0])


def _report(clipper_cnn: float) -> Report:
    results = [
        ServedResult("clipper", "cnn", 4.0, 300.0, cases=[_case(1, 20), _case(32, clipper_cnn)]),
        ServedResult("bare", "cnn", ceiling=Ceiling(32, 100.0, [[1, 30.0], [32, 100.0]])),
        ServedResult("triton", "cnn", 12.0, 900.0, cases=[_case(1, 25), _case(32, 70)]),
        ServedResult("clipper", "text", 3.0, 200.0, cases=[_case(1, 300), _case(32, 2_000)]),
        ServedResult("litserve", "text", 6.0, 400.0, cases=[_case(1, 200), _case(32, 2_500)]),
    ]
    return Report(10.0, 1.0, 1, [1, 32], "wrk", results)


def test_every_system_knows_the_new_workloads_and_the_new_peers_have_their_own_venvs(
    tmp_path: Path,
) -> None:
    assert {"cnn", "text"} <= set(WORKLOADS)
    for name in ("triton", "litserve"):
        system = SYSTEMS[name]()
        assert system.requirements[0] == "torch"  # the CPU wheel on disk, before the rest
        assert system.python(tmp_path) == tmp_path / name / "bin" / "python"
    assert SYSTEMS["bare"]().in_process == ("cnn", "text")


def test_torch_requirement_is_the_cpu_build_only() -> None:
    lines = Path("benchmarks/peers/requirements/torch.txt").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["torch==2.13.0+cpu"]


def test_the_models_answer_batches_as_single_inputs() -> None:
    network = model.build_cnn()
    images = [model.CNN_INPUT, [-value for value in model.CNN_INPUT]]
    labels = model.predict_images(network, np.asarray(images))
    assert labels[0] == expected_output("cnn") == model.predict_images(network, images[:1])[0]
    assert len(labels) == 2
    text = model.train_text_model()
    assert model.predict_texts(text, ["stock market bank price", "atom cell quantum"]) == [2, 1]
    assert expected_output("text") == 0  # TEXT_INPUT is about sport


def test_text_corpus_is_fixed() -> None:
    assert model.text_corpus() == model.text_corpus()
    sentences, labels = model.text_corpus(size=6)
    assert labels == [0, 1, 2, 0, 1, 2]
    assert all(len(s.split()) == 12 for s in sentences)


def test_ceiling_measures_the_model_in_process(tmp_path: Path) -> None:
    ceiling = measure_ceiling("text", tmp_path, Path(sys.executable), 0.4, sizes=(1, 16))
    sizes = [int(size) for size, _ in ceiling.per_batch_size]
    assert sizes == [1, 16]
    assert ceiling.batch_size in sizes
    assert ceiling.items_per_s == max(rate for _, rate in ceiling.per_batch_size) > 0


def test_ceiling_rows_and_targets() -> None:
    rows = throughput_rows(_report(clipper_cnn=90))
    bare = [row for row in rows if row[2] == "bare"]
    assert [row[1] for row in bare] == ["1", "32"]  # the same ceiling at each concurrency
    assert bare[1][3:5] == ["100", "1.11x"]
    assert bare[1][7] == "in-process, batch 32"
    met = {name: ok for name, _, ok in targets(_report(clipper_cnn=90))}
    assert met["CNN 3x64x64, own batching at c=32: ≥ 0.8x the bare model in-process"] is True
    assert met["CNN 3x64x64, own batching at c=32: ahead of every peer"] is True
    assert met["TF-IDF text, own batching at c=32: ahead of every peer"] is False
    slow = {name: ok for name, _, ok in targets(_report(clipper_cnn=60))}
    assert slow["CNN 3x64x64, own batching at c=32: ≥ 0.8x the bare model in-process"] is False
    assert slow["CNN 3x64x64, own batching at c=32: ahead of every peer"] is False


def test_ceiling_round_trips_through_json(tmp_path: Path) -> None:
    save_report(_report(90), tmp_path / "peers.json")
    loaded = load_report(tmp_path / "peers.json")
    assert loaded.find("bare", "cnn").ceiling == Ceiling(32, 100.0, [[1, 30.0], [32, 100.0]])  # type: ignore[union-attr]
    assert render_markdown(loaded) == render_markdown(_report(90))


def test_v2_requests_hold_one_row() -> None:
    request = orjson.loads(v2_request("text", 1).body)["inputs"][0]
    assert request == {"name": "text", "shape": [1, 1], "datatype": "BYTES",
                       "data": [model.TEXT_INPUT]}  # fmt: skip
    image = orjson.loads(v2_request("cnn", 1).body)["inputs"][0]
    assert image["shape"] == [1, 3 * 64 * 64]
    assert image["datatype"] == "FP32"
    answer = orjson.dumps({"outputs": [{"name": "label", "shape": [1, 1], "data": [7]}]})
    assert v2_label("cnn", answer) == 7


def test_triton_finds_its_interpreters_libpython() -> None:
    library = Path(triton_environment(Path(sys.executable))["LD_LIBRARY_PATH"].split(":")[0])
    assert any(library.glob("libpython3*.so*"))
