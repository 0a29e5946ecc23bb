"""The deployment check (build/checks.py): scikit-learn's answers to held-out rows as the API gives
them, the command that writes them for the pre-traffic hook, and the events the build's smoke test
sends the package."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import RidgeClassifier
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from build import DEFAULT_SPEC, PROJECT_ROOT, checks, train
from build.checks import check_cases, write_check_events
from build.spec import load_spec
from build.train import check_rows
from local.lambda_runtime import LambdaContext
from tests.events import load_event, response_json
from tests.unit.build.conftest import logging_unconfigured
from tests.unit.conftest import tiny_spec

# The most rows a check sends in one batch (build/checks.py's docstring: a handful of rows, quick to answer).
MAX_CHECK_ROWS = 10
CLASSIFIER_SPEC = load_spec(DEFAULT_SPEC)
REGRESSOR_SPEC = load_spec(PROJECT_ROOT / "models" / "diabetes.toml")


def fitted_rows(count: int, width: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(count).normal(size=(count, width))


@given(
    labels=st.lists(st.integers(-5, 5) | st.sampled_from(["a", "b", "c"]), min_size=2, max_size=4, unique=True).filter(
        lambda labels: len({type(label) for label in labels}) == 1
    ),
    rows=st.integers(1, 25),
    named=st.booleans(),
)
def test_a_classifiers_cases_are_its_own_answers_by_class_name(labels: list[Any], rows: int, named: bool) -> None:
    width = len(CLASSIFIER_SPEC.features)
    train_rows = fitted_rows(40, width)
    estimator = DecisionTreeClassifier(random_state=0).fit(train_rows, [labels[i % len(labels)] for i in range(40)])
    names = [f"class {label}" for label in estimator.classes_] if named else None
    spec = CLASSIFIER_SPEC.model_copy(update={"class_names": names})
    batch = fitted_rows(rows, width)[:MAX_CHECK_ROWS]

    single, many, with_probabilities = check_cases(spec, estimator, fitted_rows(rows, width))

    expected = estimator.predict(batch).tolist()
    shown = names or [str(label) for label in estimator.classes_]
    name_of = dict(zip(estimator.classes_.tolist(), shown, strict=True))
    assert single == {"query": "", "body": {"features": batch[0].tolist()}, "expected": {"prediction": expected[0]}}
    assert many == {"query": "", "body": {"instances": batch.tolist()}, "expected": {"predictions": expected}}
    assert with_probabilities == {
        "query": "probabilities=true",
        "body": {"instances": batch.tolist()},
        "expected": {
            "predictions": expected,
            "class_names": [name_of[label] for label in expected],
            "probabilities": [dict(zip(shown, row, strict=True)) for row in estimator.predict_proba(batch).tolist()],
        },
    }


@pytest.mark.parametrize("names", [["setosa", "versicolor"], ["setosa", "versicolor", "virginica", "extra"]])
def test_class_names_that_are_not_one_per_class_are_refused_not_cut_short(names: list[str]) -> None:
    width = len(CLASSIFIER_SPEC.features)
    estimator = DecisionTreeClassifier(random_state=0).fit(fitted_rows(30, width), [0, 1, 2] * 10)
    spec = CLASSIFIER_SPEC.model_copy(update={"class_names": names})

    with pytest.raises(ValueError, match="zip"):
        check_cases(spec, estimator, fitted_rows(5, width))


def test_a_regressors_cases_have_no_probabilities() -> None:
    width = len(REGRESSOR_SPEC.features)
    estimator = DecisionTreeRegressor(random_state=0).fit(fitted_rows(40, width), np.arange(40.0))
    rows = fitted_rows(12, width)

    cases = check_cases(REGRESSOR_SPEC, estimator, rows)

    expected = estimator.predict(rows[:MAX_CHECK_ROWS]).tolist()
    assert [case["query"] for case in cases] == ["", ""]
    assert [case["expected"] for case in cases] == [{"prediction": expected[0]}, {"predictions": expected}]


def test_a_classifier_without_probabilities_has_no_probability_case() -> None:
    width = len(CLASSIFIER_SPEC.features)
    estimator = RidgeClassifier().fit(fitted_rows(40, width), np.arange(40) % 3)
    rows = fitted_rows(12, width)

    cases = check_cases(CLASSIFIER_SPEC, estimator, rows)

    expected = estimator.predict(rows[:MAX_CHECK_ROWS]).tolist()
    assert [case["query"] for case in cases] == ["", ""]
    assert [case["expected"] for case in cases] == [{"prediction": expected[0]}, {"predictions": expected}]


@pytest.fixture
def build_cache(training_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The build's model cache holding the session's trained model, as a previous build left it."""
    cache = tmp_path / "cache"
    shutil.copytree(training_dir, cache / CLASSIFIER_SPEC.name)
    monkeypatch.setattr(train, "MODEL_CACHE_DIR", cache)
    return cache


def test_the_command_writes_the_checks_of_the_cached_model(
    build_cache: Path, model_version: str, iris_estimator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "checks.json"

    with logging_unconfigured():
        checks.main(["--out", str(out), "--spec", str(DEFAULT_SPEC)])

    written = json.loads(out.read_text())
    assert written["model"] == {"name": "iris-random-forest", "version": model_version}
    rows = written["cases"][1]["body"]["instances"]
    assert written["cases"][1]["expected"] == {"predictions": iris_estimator.predict(rows).tolist()}
    logged = capsys.readouterr().out.splitlines()
    assert f"[build] wrote 3 deployment checks for iris-random-forest {written['model']} to {out}" in logged


def test_the_checks_of_a_given_model_directory_leave_the_builds_cache_alone(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pre-traffic hook's tests write the checks of a model trained elsewhere.
    build_cache = tmp_path / "build-cache"
    monkeypatch.setattr(train, "MODEL_CACHE_DIR", build_cache)
    out = tmp_path / "checks.json"
    # The version is the first 12 hex digits of the model file's sha256 (docs/api.md).
    version = hashlib.sha256((tiny_model_dir / train.MODEL_FILE).read_bytes()).hexdigest()[:12]

    written = checks.write_checks(tiny_spec(n_estimators=3), out, tiny_model_dir)

    assert json.loads(out.read_text()) == written
    assert written["model"] == {"name": "iris-random-forest", "version": version}
    assert not build_cache.exists()


def test_the_command_exits_non_zero_on_a_bad_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.toml"

    with logging_unconfigured(), pytest.raises(SystemExit) as exited:
        checks.main(["--out", str(tmp_path / "checks.json"), "--spec", str(missing)])

    assert exited.value.code == 1
    [failure] = capsys.readouterr().out.splitlines()
    assert failure.startswith("[build] build failed: ")
    assert str(missing) in failure
    assert not (tmp_path / "checks.json").exists()


def test_a_model_without_held_out_rows_has_no_deployment_check(
    build_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = check_rows(CLASSIFIER_SPEC)
    monkeypatch.setattr(checks, "check_rows", lambda spec: replace(rows, held_out=rows.held_out[:0]))

    with pytest.raises(
        checks.SpecError, match=r"^the deployment check needs held-out rows: give `sample_data` with `estimator_file`$"
    ):
        checks.build_checks(CLASSIFIER_SPEC)


def test_the_smoke_tests_events_are_the_checks_as_the_sample_event_sends_them(
    build_cache: Path, app_module: ModuleType, tmp_path: Path
) -> None:
    cases = checks.build_checks(CLASSIFIER_SPEC)["cases"]
    sample = load_event("http-api-predict.json")

    paths = write_check_events(CLASSIFIER_SPEC, tmp_path)

    assert [path.name for path in paths] == [f"model-check-{number}.json" for number in range(len(cases))]
    for path, case in zip(paths, cases, strict=True):
        event = json.loads(path.read_text())
        assert event["rawQueryString"] == case["query"]
        assert json.loads(event["body"]) == case["body"]
        # The body changed, so the sample's content-length would lie: it is left out, the rest kept.
        assert event["headers"] == {
            name: value for name, value in sample["headers"].items() if name != "content-length"
        }
        assert {key: value for key, value in event.items() if key not in ("rawQueryString", "body", "headers")} == {
            key: value for key, value in sample.items() if key not in ("rawQueryString", "body", "headers")
        }
        assert response_json(app_module.handler(event, LambdaContext())) == case["expected"]


def test_the_commands_help_describes_it_and_its_required_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "300")

    with pytest.raises(SystemExit) as exited:
        checks.main(["--help"])

    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert checks.__doc__ is not None
    assert " ".join(checks.__doc__.split()) in shown
    assert "] --out OUT [--spec SPEC]" in shown
    assert " --out OUT the check file to write --spec SPEC " in shown


def test_the_command_needs_the_file_to_write(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        checks.main([])

    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(" error: the following arguments are required: --out")
