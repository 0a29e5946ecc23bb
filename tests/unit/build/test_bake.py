"""Baking a model: compiled behind the gate, or served by scikit-learn with the reason recorded."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from build import DEFAULT_SPEC, bake, engines
from build.bake import GATE_ROWS, CompileRefusedError, _sample, bake_model
from build.engines import ExactnessError
from build.spec import ModelSpec, load_spec
from build.train import MODEL_FILE, check_rows
from local.lambda_runtime import LambdaContext
from serving.config import PACKAGE_MODEL_DIR
from tests.events import http_api_event, response_json
from tests.unit.conftest import imported_app


def spec_with(estimator: str, **params: Any) -> ModelSpec:
    spec = load_spec(DEFAULT_SPEC)
    assert spec.training is not None
    return spec.model_copy(
        update={"training": spec.training.model_copy(update={"estimator": estimator, "params": params})}
    )


NEIGHBOURS = spec_with("sklearn.neighbors.KNeighborsClassifier", n_neighbors=3)


def test_an_estimator_without_a_compiled_engine_is_served_by_scikit_learn(tmp_path: Path) -> None:
    baked = bake_model(tmp_path / "package", "auto", tmp_path / "cache", NEIGHBOURS)

    assert baked.serving_engine.name == "scikit-learn"
    assert baked.serving_engine.fallback_reason == "no compiled engine for KNeighborsClassifier"
    written = json.loads((tmp_path / "package" / PACKAGE_MODEL_DIR / "manifest.json").read_text())
    assert written["engine"]["fallback_reason"] == "no compiled engine for KNeighborsClassifier"
    estimator = joblib.load(tmp_path / "cache" / MODEL_FILE)
    rows = check_rows(NEIGHBOURS).held_out
    with imported_app(tmp_path / "package" / PACKAGE_MODEL_DIR) as app:
        event = http_api_event(body={"instances": rows.tolist()}, query={"probabilities": "true"})
        body = response_json(app.handler(event, LambdaContext()))
    assert body["predictions"] == estimator.predict(rows).tolist()
    assert [list(row.values()) for row in body["probabilities"]] == estimator.predict_proba(rows).tolist()


def test_asking_for_the_compiled_engine_of_such_an_estimator_fails_the_build(tmp_path: Path) -> None:
    with pytest.raises(CompileRefusedError, match="cannot compile the model: no compiled engine for KNeighbors"):
        bake_model(tmp_path / "package", "compiled", tmp_path / "cache", NEIGHBOURS)


def off_by_one_ulp(estimator: Any, prefix: str = "") -> dict[str, Any]:
    """The real compiler's arrays, with every leaf value one ulp up."""
    arrays = engines.compile_estimator(estimator, prefix)
    arrays["leaf_values"] = np.nextafter(arrays["leaf_values"], np.inf)
    return arrays


def test_a_compiled_engine_that_differs_by_one_ulp_fails_the_build(
    tmp_path: Path, training_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("build.bake.compile_estimator", off_by_one_ulp)

    with pytest.raises(ExactnessError, match="training rows: predict_proba differs"):
        bake_model(tmp_path / "package", "auto", training_dir, load_spec(DEFAULT_SPEC))
    assert not (tmp_path / "package" / PACKAGE_MODEL_DIR / "manifest.json").exists()


def test_a_model_known_only_by_held_out_rows_fails_the_gate_naming_them(
    tmp_path: Path, training_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fitted estimator_file has no training rows: only its sample data, held out, and the probes.
    rows = check_rows(load_spec(DEFAULT_SPEC))
    monkeypatch.setattr("build.bake.check_rows", lambda spec: replace(rows, train=rows.train[:0]))
    monkeypatch.setattr("build.bake.compile_estimator", off_by_one_ulp)

    with pytest.raises(ExactnessError, match="not exact: held-out rows: predict_proba differs"):
        bake_model(tmp_path / "package", "auto", training_dir, load_spec(DEFAULT_SPEC))


def baking_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == bake.__name__]


def test_the_build_log_says_which_engine_serves_and_why_not_compiled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=bake.__name__)

    bake_model(tmp_path / "package", "auto", tmp_path / "cache", NEIGHBOURS)

    model_dir = tmp_path / "package" / PACKAGE_MODEL_DIR
    written = json.loads((model_dir / "manifest.json").read_text())
    fallback, baked = baking_log(caplog)
    assert fallback == "keeping the scikit-learn engine: no compiled engine for KNeighborsClassifier"
    assert baked.startswith(f"baked model {written['name']} {written['version']} ({{'test_accuracy': ")
    assert baked.endswith(f", scikit-learn engine) into {model_dir}")


def test_the_build_log_says_how_many_rows_proved_the_compiled_engine_exact(
    tmp_path: Path, training_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = load_spec(DEFAULT_SPEC)
    estimator = joblib.load(training_dir / MODEL_FILE)
    rows = check_rows(spec)
    probes = engines.compiler_for(estimator).probe_rows(estimator, rows.train)
    caplog.set_level(logging.INFO, logger=bake.__name__)

    bake_model(tmp_path / "package", "auto", training_dir, spec)

    compiled, baked = baking_log(caplog)
    checked = len(rows.train) + len(rows.held_out) + len(probes)
    assert compiled == f"compiled the model (forest engine, bitwise-anywhere): bitwise identical on {checked} rows"
    assert baked.startswith(f"baked model {spec.name} ")
    assert baked.endswith(f", compiled engine) into {tmp_path / 'package' / PACKAGE_MODEL_DIR}")


def test_a_package_that_already_has_a_model_is_not_baked_into(tmp_path: Path, training_dir: Path) -> None:
    stale = tmp_path / "package" / PACKAGE_MODEL_DIR / MODEL_FILE
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier bake's model")

    with pytest.raises(FileExistsError):
        bake_model(tmp_path / "package", "auto", training_dir, load_spec(DEFAULT_SPEC))
    assert stale.read_bytes() == b"an earlier bake's model"
    assert [path.name for path in stale.parent.iterdir()] == [MODEL_FILE]


def test_the_gate_compares_a_bounded_sample_of_a_large_dataset_the_same_rows_in_order_each_bake() -> None:
    rows = np.arange(2 * GATE_ROWS + 1, dtype=np.float64).reshape(-1, 1)

    sample = _sample(rows)

    assert sample.shape == (GATE_ROWS, 1)
    assert np.all(np.diff(sample[:, 0]) > 0)  # rows of the dataset, in its order, none twice
    assert np.array_equal(sample, _sample(rows))
    assert np.array_equal(_sample(rows[:GATE_ROWS]), rows[:GATE_ROWS])
