"""Request capture (serving/capture.py): what a sampled request writes, what the subscription
filter lets through, what is never written, and what capture off costs (nothing written)."""

from __future__ import annotations

import io
import json
import math
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving import capture
from serving.capture import ENCODER, FILTER_PATTERN, MAX_RECORD_CHARS, Capture
from serving.manifest import Feature, Manifest
from serving.snapstart import reseed_random
from tests.cloudformation import source_template
from tests.events import http_api_event, load_event, response_json
from tests.filter_pattern import matches

IRIS_ROW = [6.1, 2.8, 4.7, 1.2]


def iris_manifest(training_dir: Path) -> Manifest:
    return Manifest.model_validate_json((training_dir / "manifest.json").read_bytes())


def written(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def capturing(app_module: ModuleType) -> Any:
    """The app's capture on at 100 %, writing to a buffer; off again afterwards."""
    stream = io.StringIO()
    capture.configure(app_module.model.manifest, 100)
    assert capture.active is not None
    capture.active.stream = stream
    yield stream
    capture.configure(app_module.model.manifest, 0)


def test_the_template_subscribes_with_the_pattern_the_records_are_written_for() -> None:
    resource = source_template()["Resources"]["CaptureSubscriptionFilter"]
    assert resource["Properties"]["FilterPattern"] == FILTER_PATTERN


def test_a_sampled_prediction_is_one_record_the_filter_lets_through(
    app_module: ModuleType, capturing: io.StringIO, lambda_context: Any, model_version: str
) -> None:
    response = app_module.handler(load_event("http-api-predict.json"), lambda_context)
    assert response_json(response) == {"prediction": 1}

    [line] = capturing.getvalue().splitlines()
    assert matches(FILTER_PATTERN, line)
    record = json.loads(line)
    assert record["instances"] == [dict(zip(app_module.model.manifest.feature_names, IRIS_ROW, strict=True))]
    assert record["predictions"] == [1]
    assert "probabilities" not in record
    assert record["model"] == "iris-random-forest"
    assert record["version"] == model_version
    assert record["engine"] == app_module.model.manifest.serving_engine.name
    assert record["request_id"] == lambda_context.aws_request_id
    assert abs(record["time_ms"] / 1000 - __import__("time").time()) < 60


def test_probabilities_are_captured_when_asked_for(
    app_module: ModuleType, capturing: io.StringIO, lambda_context: Any
) -> None:
    app_module.handler(load_event("http-api-predict-probabilities.json"), lambda_context)
    [record] = written(capturing)
    assert len(record["probabilities"][0]) == 3
    assert math.isclose(sum(record["probabilities"][0]), 1.0)


def test_open_inference_protocol_requests_are_captured_too(
    app_module: ModuleType, capturing: io.StringIO, lambda_context: Any
) -> None:
    app_module.handler(load_event("http-api-v2-infer.json"), lambda_context)
    [record] = written(capturing)
    assert len(record["instances"]) == len(record["predictions"]) >= 1


def test_refused_requests_and_other_routes_write_no_record(
    app_module: ModuleType, capturing: io.StringIO, lambda_context: Any
) -> None:
    for name in ("http-api-predict-wrong-count.json", "http-api-get-model.json", "http-api-get-root.json"):
        app_module.handler(load_event(name), lambda_context)
    assert capturing.getvalue() == ""


def test_the_functions_other_log_lines_do_not_pass_the_filter(
    app_module: ModuleType, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    app_module.handler(http_api_event(method="POST", path="/predict", body={"features": [1, 2]}), lambda_context)
    app_module.handler(load_event("http-api-predict.json"), lambda_context)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines, "the structured logs and the metrics document"
    assert not any(matches(FILTER_PATTERN, line) for line in lines)


def test_capture_off_writes_nothing(app_module: ModuleType, lambda_context: Any) -> None:
    capture.configure(app_module.model.manifest, 0)
    assert capture.active is None
    app_module.handler(load_event("http-api-predict.json"), lambda_context)  # no error, no record


def test_a_feature_marked_capture_false_is_never_written(training_dir: Path) -> None:
    manifest = iris_manifest(training_dir)
    assert manifest.profile is not None
    profile = manifest.profile.model_copy(
        update={"not_captured": ["petal_width"], "features": {**manifest.profile.features}}
    )
    del profile.features["petal_width"]
    private = manifest.model_copy(update={"profile": profile})
    stream = io.StringIO()
    Capture(private, 100, stream).write(np.array([IRIS_ROW, IRIS_ROW]), [1, 1], None)
    [record] = written(stream)
    assert all("petal_width" not in instance for instance in record["instances"])
    assert "petal_width" not in stream.getvalue()
    assert record["instances"][0] == {"sepal_length": 6.1, "sepal_width": 2.8, "petal_length": 4.7}


def test_missing_values_are_written_as_null(training_dir: Path) -> None:
    manifest = iris_manifest(training_dir)
    nullable = [feature.model_copy(update={"allow_missing": True}) for feature in manifest.features]
    stream = io.StringIO()
    Capture(manifest.model_copy(update={"features": nullable}), 100, stream).write(
        np.array([[math.nan, 2.8, 4.7, 1.2]]), [1], None
    )
    assert written(stream)[0]["instances"][0]["sepal_length"] is None


def test_a_category_row_is_written_as_it_was_validated(training_dir: Path) -> None:
    manifest = iris_manifest(training_dir)
    features = [Feature(name="island", type="category", categories=["Biscoe", "Dream"]), *manifest.features[1:]]
    stream = io.StringIO()
    rows = np.array([["Dream", 2.8, 4.7, 1.2]], dtype=object)
    Capture(manifest.model_copy(update={"features": features, "profile": None}), 100, stream).write(rows, [1], None)
    assert written(stream)[0]["instances"][0]["island"] == "Dream"


def test_a_batch_too_large_for_one_log_event_is_split_across_records_in_order(training_dir: Path) -> None:
    rows = np.tile(np.array(IRIS_ROW), (10_000, 1))
    labels = list(range(10_000))
    stream = io.StringIO()
    Capture(iris_manifest(training_dir), 100, stream).write(rows, labels, None)
    records = written(stream)
    assert len(records) > 1
    assert all(len(line) <= MAX_RECORD_CHARS for line in stream.getvalue().splitlines())
    assert [label for record in records for label in record["predictions"]] == labels
    assert [record["first_row"] for record in records] == [
        sum(len(earlier["predictions"]) for earlier in records[:index]) for index in range(len(records))
    ]


@pytest.mark.parametrize("percent", [1, 10, 50])
def test_about_the_configured_percentage_of_requests_is_captured(training_dir: Path, percent: int) -> None:
    stream = io.StringIO()
    sampler = Capture(iris_manifest(training_dir), percent, stream)
    random.seed(percent)
    for _ in range(20_000):
        sampler.sample(np.array([IRIS_ROW]), [1], None)
    share = len(stream.getvalue().splitlines()) / 20_000
    assert share == pytest.approx(percent / 100, abs=0.01)


def test_environments_restored_from_one_snapshot_sample_differently(training_dir: Path) -> None:
    """The draw uses the random module's state, which the after-restore hook reseeds."""

    def decisions() -> list[int]:
        stream = io.StringIO()
        sampler = Capture(iris_manifest(training_dir), 50, stream)
        for index in range(64):
            sampler.sample(np.array([IRIS_ROW]), [index], None)
        return [record["predictions"][0] for record in written(stream)]

    random.seed(1)  # the snapshot's state
    first_restore = (reseed_random(), decisions())[1]
    random.seed(1)
    second_restore = (reseed_random(), decisions())[1]
    random.seed(1)
    without_reseed = decisions()
    random.seed(1)
    assert decisions() == without_reseed, "the same state draws the same requests"
    assert first_restore != second_restore


FLOAT32_MAX = float(np.finfo(np.float32).max)
finite_numbers = st.floats(min_value=-FLOAT32_MAX, max_value=FLOAT32_MAX, allow_nan=False)
probabilities = st.lists(st.floats(min_value=0, max_value=1), min_size=3, max_size=3)


def missing_as_null(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def as_json_writes_it(manifest: Manifest, line: str, rows: list[list[Any]], labels: list[Any], proba: Any) -> str:
    """The record as the json module writes it, keys in the record's order: what the line must equal."""
    names = [feature.name for feature in manifest.features]
    record: dict[str, Any] = {
        "capture": "v1",
        "model": manifest.name,
        "version": manifest.version,
        "engine": manifest.serving_engine.name,
        "time_ms": json.loads(line)["time_ms"],
        "request_id": 'req-"1"\\é',
        "first_row": 0,
        "instances": [{name: missing_as_null(value) for name, value in zip(names, row, strict=True)} for row in rows],
        "predictions": labels,
    }
    if proba is not None:
        record["probabilities"] = proba
    return ENCODER.encode(record) + "\n"


@given(
    rows=st.lists(st.lists(finite_numbers, min_size=4, max_size=4), min_size=1, max_size=5),
    proba=st.none() | st.lists(probabilities, min_size=5, max_size=5),
    data=st.data(),
)
def test_a_record_of_numbers_is_exactly_what_json_writes(
    training_dir: Path, rows: list[list[float]], proba: list[list[float]] | None, data: st.DataObject
) -> None:
    manifest = iris_manifest(training_dir)
    labels = data.draw(st.lists(st.integers(0, 2), min_size=len(rows), max_size=len(rows)))
    proba = proba[: len(rows)] if proba is not None else None
    stream = io.StringIO()
    capture = Capture(manifest, 100, stream)
    capture.request_id = 'req-"1"\\é'
    capture.write(np.array(rows), labels, None if proba is None else np.array(proba))
    line = stream.getvalue()
    assert line == as_json_writes_it(manifest, line, rows, labels, proba)
    assert matches(FILTER_PATTERN, line.rstrip("\n"))


@given(
    rows=st.lists(
        st.tuples(st.text(max_size=12) | st.just(math.nan), finite_numbers | st.just(math.nan), finite_numbers),
        min_size=1,
        max_size=4,
    ),
    label=st.integers() | st.text(max_size=8) | finite_numbers | st.booleans(),
)
def test_a_record_of_categories_missing_values_and_any_label_is_exactly_what_json_writes(
    training_dir: Path, rows: list[tuple[Any, ...]], label: Any
) -> None:
    iris = iris_manifest(training_dir)
    features = [
        Feature(name="island", type="category", categories=["Biscoe"], allow_missing=True),
        iris.features[1].model_copy(update={"allow_missing": True}),
        iris.features[2],
    ]
    manifest = iris.model_copy(update={"features": features, "profile": None})
    stream = io.StringIO()
    capture = Capture(manifest, 100, stream)
    capture.request_id = 'req-"1"\\é'
    capture.write(np.array(rows, dtype=object), [label] * len(rows), None)
    line = stream.getvalue()
    assert line == as_json_writes_it(manifest, line, [list(row) for row in rows], [label] * len(rows), None)


def hive_reads(column_type: str, value: Any) -> bool:
    """Whether the JSON SerDe reads `value` as a Hive `column_type` (what Athena sees), null included."""
    if value is None:
        return True
    if column_type.startswith("array<"):
        inner = column_type[len("array<") : -1]
        return isinstance(value, list) and all(hive_reads(inner, item) for item in value)
    if column_type.startswith("map<string,"):
        inner = column_type[len("map<string,") : -1]
        return isinstance(value, dict) and all(hive_reads(inner, item) for item in value.values())
    if column_type == "string":  # a JSON string, or any other primitive as its text
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    limits = {"int": 2**31, "bigint": 2**63}
    if column_type in limits:
        return type(value) is int and -limits[column_type] <= value < limits[column_type]
    if column_type == "double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    raise AssertionError(f"no rule for the Hive type {column_type}")


def test_a_record_has_the_glue_tables_columns_each_of_its_type(training_dir: Path) -> None:
    """What Athena queries: every column the table declares, nothing it does not, of its type."""
    table = source_template()["Resources"]["CaptureTable"]["Properties"]["TableInput"]
    columns = {column["Name"]: column["Type"] for column in table["StorageDescriptor"]["Columns"]}
    manifest = iris_manifest(training_dir)
    nullable = [feature.model_copy(update={"allow_missing": True}) for feature in manifest.features]
    stream = io.StringIO()
    capture = Capture(manifest.model_copy(update={"features": nullable}), 100, stream)
    capture.request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    capture.write(np.array([IRIS_ROW, [math.nan, *IRIS_ROW[1:]]]), [1, 2], np.array([[0.1, 0.8, 0.1], [0, 0, 1.0]]))
    [record] = written(stream)

    assert set(record) == set(columns)
    assert all(column == column.lower() for column in record), "Hive folds column names to lower case"
    mistyped = {name: record[name] for name, kind in columns.items() if not hive_reads(kind, record[name])}
    assert not mistyped
    assert not {partition["Name"] for partition in table["PartitionKeys"]} & set(record)
