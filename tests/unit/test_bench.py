"""The benchmark's pure parts: percentiles, targets and verdicts, tables, the generated
sections, request events from a model's rows, and when a package is rebuilt."""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.measure import BatchTiming, Variant, percentile, request_event, resample, time_batches
from bench.packages import AUTO, Build, build_if_changed, failure_summary
from bench.report import (
    BASELINE,
    PROJECT,
    SCIKIT_LEARN_ENGINE,
    SECTION_DOCUMENTS,
    MarkerError,
    ModelResult,
    Target,
    batch_table,
    comparison_table,
    end_marker,
    models_table,
    replace_between_markers,
    start_marker,
    table,
    update_document,
    update_documents,
)
from build.package import PROJECT_ROOT
from build.sizes import SizeReport
from tests.events import load_event

SEEDS = range(20)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def row_of(lines: list[str], first_cell: str) -> list[str]:
    return next(cells(line) for line in lines if cells(line)[0] == first_cell)


def variant(name: str, rng: random.Random, package: Path = Path("unused")) -> Variant:
    measured = Variant(name, package)
    measured.cold_s = [rng.uniform(0.1, 5.0) for _ in range(rng.randint(1, 7))]
    measured.warm_ms = [rng.uniform(0.1, 20.0) for _ in range(rng.randint(1, 300))]
    measured.rss_mib = [rng.uniform(30, 200) for _ in range(len(measured.cold_s))]
    measured.size = SizeReport(rng.randint(10**7, 3 * 10**8), rng.randint(10**6, 10**8), 1, [])
    measured.first_response = '200 {"prediction":1}'
    return measured


def built(tmp_path: Path, model: str, choice: str, served_by: str) -> Build:
    package = tmp_path / model / choice
    (package / "model").mkdir(parents=True)
    (package / "model" / "manifest.json").write_text(json.dumps({"engine": {"name": served_by}}))
    return Build(model, choice, package)


def test_percentile_picks_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


@pytest.mark.parametrize("seed", SEEDS)
def test_percentile_is_a_member_with_the_right_share_below(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.uniform(-1e3, 1e3) for _ in range(rng.randint(1, 500))]
    fraction = rng.random()

    picked = percentile(values, fraction)

    assert picked in values
    below = sum(value < picked for value in values)
    assert abs(below - fraction * (len(values) - 1)) <= 0.5 + values.count(picked)


@pytest.mark.parametrize(
    ("target", "value", "reference", "met"),
    [
        (Target(0.40, "baseline"), 1.0, 3.0, True),
        (Target(0.40, "baseline"), 1.5, 3.0, False),
        (Target(180), 177.6, None, True),
        (Target(180), 181.0, None, False),
    ],
)
def test_targets_are_ratios_or_absolute(target: Target, value: float, reference: float | None, met: bool) -> None:
    assert target.met(value, reference) is met


def test_a_table_has_one_cell_per_header_and_escapes_pipes() -> None:
    lines = table(["a", "b"], [["x|y", "1"]])

    assert lines[:2] == ["| a | b |", "|---|---|"]
    assert lines[2] == "| x\\|y | 1 |"


@pytest.mark.parametrize("seed", SEEDS)
def test_comparison_table_reports_medians_ratios_and_verdicts(seed: int) -> None:
    rng = random.Random(seed)
    variants = [variant(name, rng) for name in (BASELINE, SCIKIT_LEARN_ENGINE, PROJECT)]
    baseline, scikit_learn, project = variants

    lines = comparison_table(variants)

    cold = row_of(lines, "cold start, median (s)")
    assert cold[1:4] == [f"{statistics.median(v.cold_s):.3f}" for v in variants]
    to_scikit_learn = statistics.median(project.cold_s) / statistics.median(scikit_learn.cold_s)
    assert f"{to_scikit_learn:.2f}x" in cold
    met = "met" if to_scikit_learn <= 0.35 else "MISSED"
    assert f"{PROJECT} ≤ 0.35x {SCIKIT_LEARN_ENGINE} {met}" in cold[-1]
    to_baseline = statistics.median(project.cold_s) / statistics.median(baseline.cold_s)
    assert f"{PROJECT} ≤ 0.12x {BASELINE} {'met' if to_baseline <= 0.12 else 'MISSED'}" in cold[-1]
    size = row_of(lines, "package unzipped (MB)")
    assert f"{PROJECT} ≤ 80 {'met' if project.size and project.size.unzipped_bytes <= 80e6 else 'MISSED'}" in size[-1]
    assert all(len(cells(line)) == len(cells(lines[0])) for line in lines[2:])


@pytest.mark.parametrize("seed", SEEDS)
def test_models_table_judges_the_compiled_build_against_its_scikit_learn_build(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    compiled, scikit_learn = variant("iris, auto", rng), variant("iris, scikit-learn", rng)
    result = ModelResult(
        "iris",
        built(tmp_path, "iris", AUTO, "compiled"),
        compiled,
        built(tmp_path, "iris", "scikit-learn", "scikit-learn"),
        scikit_learn,
    )

    lines = models_table([result])

    compiled_row, scikit_learn_row = (cells(line) for line in lines[2:])
    assert compiled_row[:2] == ["iris", "compiled"]
    assert scikit_learn_row[:2] == ["iris", "scikit-learn"]
    ratio = statistics.median(compiled.warm_ms) / statistics.median(scikit_learn.warm_ms)
    met = "met" if ratio <= 1.0 else "MISSED"
    assert f"warm request {ratio:.2f}x ≤ 1.00x {SCIKIT_LEARN_ENGINE} {met}" in compiled_row[-1]
    rss = statistics.median(compiled.rss_mib)
    assert f"peak RSS {rss:.0f} ≤ 80 {'met' if rss <= 80 else 'MISSED'}" in compiled_row[-1]


def test_a_build_that_fell_back_to_scikit_learn_claims_no_compiled_figures(tmp_path: Path) -> None:
    rng = random.Random(0)
    result = ModelResult(
        "penguins",
        built(tmp_path, "penguins", AUTO, "scikit-learn"),
        variant("penguins, auto", rng),
        built(tmp_path, "penguins", "scikit-learn", "scikit-learn"),
        variant("penguins, scikit-learn", rng),
        batches=[BatchTiming(1, 0.001, 0.002), BatchTiming(100, 0.003, 0.002)],
    )

    compiled_row = cells(models_table([result])[2])
    batch_rows = [cells(line) for line in batch_table([result])[2:]]

    assert "fell back" in compiled_row[1]
    assert compiled_row[-1] == "no verdict: not compiled"
    assert all("fell back" in row[2] and row[-1] == "no verdict: not compiled" for row in batch_rows)


def test_a_model_that_did_not_build_is_reported_not_measured(tmp_path: Path) -> None:
    failed = Build("diabetes", AUTO, tmp_path, error="build failed: the package failed to start")
    result = ModelResult(
        "diabetes",
        failed,
        Variant("diabetes, auto", tmp_path, error="not built"),
        built(tmp_path, "diabetes", "scikit-learn", "scikit-learn"),
        variant("diabetes, scikit-learn", random.Random(0)),
        batch_error=failed.error,
    )

    compiled_row = cells(models_table([result])[2])
    batch_row = cells(batch_table([result])[2])

    assert "not built (build failed: the package failed to start)" in compiled_row[1]
    assert compiled_row[2:-1] == ["-"] * 5
    assert compiled_row[-1] == "no verdict: not measured"
    assert batch_row[-1] == "not measured: build failed: the package failed to start"


@pytest.mark.parametrize("seed", SEEDS)
def test_batch_verdicts_are_the_engine_against_scikit_learn(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    timings = [BatchTiming(rows, rng.uniform(1e-5, 1e-1), rng.uniform(1e-5, 1e-1)) for rows in (1, 100, 10_000)]
    result = ModelResult(
        "iris",
        built(tmp_path, "iris", AUTO, "compiled"),
        variant("iris, auto", rng),
        built(tmp_path, "iris", "scikit-learn", "scikit-learn"),
        variant("iris, scikit-learn", rng),
        batches=timings,
    )

    rows = [cells(line) for line in batch_table([result])[2:]]

    for row, timing in zip(rows, timings, strict=True):
        ratio = timing.engine_s / timing.estimator_s
        assert row[:3] == ["iris", f"{timing.rows:,}", "compiled"]
        assert row[5:] == [f"{ratio:.2f}x", f"≤ 1.00x scikit-learn {'met' if ratio <= 1.0 else 'MISSED'}"]


def test_answers_that_differ_from_scikit_learn_are_reported_not_timed() -> None:
    rows = np.arange(12.0).reshape(6, 2)

    timings = time_batches(lambda batch: batch[:, 0] + 1, lambda batch: batch[:, 0], rows)

    assert [timing.rows for timing in timings] == [1, 100, 10_000]
    assert all(timing.error == f"answers differ from scikit-learn's on {timing.rows} rows" for timing in timings)
    assert all(math.isnan(timing.engine_s) for timing in timings)


def document(rng: random.Random, words: list[str]) -> str:
    return "\n".join(" ".join(rng.choices(words, k=rng.randint(0, 8))) for _ in range(rng.randint(0, 6)))


@pytest.mark.parametrize("seed", SEEDS)
def test_markers_replace_only_what_lies_between_them(seed: int) -> None:
    rng = random.Random(seed)
    words = ["|", "figure", "0.35x", "<!--", "-->", "bench", "\u00e9", "##", ""]
    before, old, new, after = (document(rng, words) for _ in range(4))
    other = f"{start_marker('cost')}\n{old}\n{end_marker('cost')}"
    text = f"{before}\n{other}\n{start_marker('comparison')}\n{old}\n{end_marker('comparison')}\n{after}"

    replaced = replace_between_markers(text, "comparison", new)

    start, end = start_marker("comparison"), end_marker("comparison")
    assert replaced.startswith(f"{before}\n{other}\n{start}\n")
    assert replaced.endswith(f"\n{end}\n{after}")
    assert replaced.split(start)[1].split(end)[0].strip() == new.strip()
    assert replace_between_markers(replaced, "comparison", new) == replaced


@pytest.mark.parametrize(
    "text",
    [
        "no markers at all",
        f"{start_marker('cost')} and no end",
        f"{end_marker('cost')} before {start_marker('cost')}",
        f"{start_marker('cost')} {start_marker('cost')} {end_marker('cost')}",
    ],
)
def test_missing_or_misplaced_markers_fail_clearly(text: str) -> None:
    with pytest.raises(MarkerError, match=r"`<!-- bench:(start|end) cost -->`"):
        replace_between_markers(text, "cost", "table")


def test_update_document_names_the_file_and_leaves_it_alone_on_failure(tmp_path: Path) -> None:
    document = tmp_path / "benchmark.md"
    original = f"# Title\n{start_marker('comparison')}\nold\n{end_marker('comparison')}\n"
    document.write_text(original)

    with pytest.raises(MarkerError, match=rf"{document}: .*cost"):
        update_document(document, {"comparison": "new", "cost": "table"})
    assert document.read_text() == original

    update_document(document, {"comparison": "new"})
    assert document.read_text() == f"# Title\n{start_marker('comparison')}\nnew\n{end_marker('comparison')}\n"


def test_each_generated_section_goes_to_its_own_document(tmp_path: Path) -> None:
    for name, document in SECTION_DOCUMENTS.items():
        (tmp_path / document).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / document).write_text(f"{start_marker(name)}\nold\n{end_marker(name)}\n")

    update_documents(tmp_path, {name: f"new {name}" for name in SECTION_DOCUMENTS})

    for name, document in SECTION_DOCUMENTS.items():
        assert (tmp_path / document).read_text() == f"{start_marker(name)}\nnew {name}\n{end_marker(name)}\n"


@pytest.mark.parametrize("name", sorted(SECTION_DOCUMENTS))
def test_the_projects_documents_hold_each_generated_section_once(name: str) -> None:
    text = (PROJECT_ROOT / SECTION_DOCUMENTS[name]).read_text()
    _, _, generated = text.partition(start_marker(name))

    assert replace_between_markers(text, name, generated.partition(end_marker(name))[0]) == text


@pytest.mark.parametrize("seed", SEEDS)
def test_request_event_sends_the_row_as_the_api_takes_it(seed: int) -> None:
    rng = np.random.default_rng(seed)
    numbers = list(rng.normal(0, 1e3, size=rng.integers(1, 6)))
    row: list[Any] = [*numbers, "Biscoe", math.nan, np.float64(rng.normal()), np.float64("nan"), "male"]
    rng.shuffle(row)
    template = load_event("http-api-predict.json")

    event = request_event(template, row)

    body = json.loads(event["body"])
    expected = [None if not isinstance(v, str) and math.isnan(v) else v for v in row]
    assert body == {"features": [v if isinstance(v, str) or v is None else float(v) for v in expected]}
    assert "NaN" not in event["body"]
    assert event["headers"]["content-length"] == str(len(event["body"].encode()))
    assert {k: v for k, v in event.items() if k not in ("body", "headers")} == {
        k: v for k, v in template.items() if k not in ("body", "headers")
    }
    assert template == load_event("http-api-predict.json")


def test_request_event_refuses_an_infinite_number() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        request_event(load_event("http-api-predict.json"), [math.inf])


def test_resample_draws_rows_of_the_same_kind() -> None:
    rows = np.array([["Dream", 1.0], ["Biscoe", math.nan], ["Torgersen", 3.5]], dtype=object)

    drawn = resample(rows, 500, np.random.default_rng(0))

    assert drawn.shape == (500, 2)
    assert drawn.dtype == rows.dtype
    assert {row[0] for row in drawn} == {"Dream", "Biscoe", "Torgersen"}


def test_a_package_is_rebuilt_only_when_its_inputs_change_and_a_failure_is_remembered(tmp_path: Path) -> None:
    package = tmp_path / "model" / "PredictFunction"
    calls: list[str] = []

    def build(error: str | None) -> Callable[[], str | None]:
        def run() -> str | None:
            calls.append("built")
            package.mkdir(parents=True, exist_ok=True)
            (package / "app.py").write_text("")
            return error

        return run

    assert build_if_changed(package, "key-1", build("no engine")) == "no engine"
    assert build_if_changed(package, "key-1", build(None)) == "no engine"
    assert len(calls) == 1
    assert build_if_changed(package, "key-1", build(None), rebuild=True) is None
    assert build_if_changed(package, "key-1", build("never run")) is None
    assert len(calls) == 2
    assert build_if_changed(package, "key-2", build(None)) is None
    assert len(calls) == 3
    (package / "app.py").unlink()
    assert build_if_changed(package, "key-2", build(None)) is None
    assert len(calls) == 4


def test_failure_summary_keeps_the_builds_own_reason_and_its_last_line() -> None:
    log = (
        "[build] installing\n[build] build failed: the package failed to start or answer:\n"
        f"Traceback\n  x\nModelLoadError: bad manifest {PROJECT_ROOT / 'bench' / 'm.json'}\n"
    )

    summary = failure_summary(log)

    assert summary == "build failed: the package failed to start or answer: … ModelLoadError: bad manifest bench/m.json"
    assert failure_summary("KeyError: 'test_accuracy'\n") == "KeyError: 'test_accuracy'"
    assert len(failure_summary("x" * 10_000)) <= 160
