"""build/spec.py and build/train.py: a spec is checked once, at build, against the estimator; each
refusal is one line, before any training or metrics. Classifiers without predict_proba build and
serve, and a request for their probabilities is refused with a clear 422."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from build import DEFAULT_SPEC
from build.bake import bake_model
from build.spec import SpecError, load_spec
from build.train import encoded_categories, train_if_needed
from local.lambda_runtime import LambdaContext
from serving.config import PACKAGE_MODEL_DIR
from tests.events import http_api_event, response_json
from tests.unit.conftest import imported_app

FOREST = 'estimator = "sklearn.ensemble.RandomForestClassifier"'


def iris_spec(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = DEFAULT_SPEC.read_text()
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def build(path: Path) -> None:
    train_if_needed(path.parent / "model", load_spec(path))


def refusal(path: Path, train: bool = False) -> str:
    with pytest.raises(SpecError) as refused:
        (build if train else load_spec)(path)
    message = str(refused.value)
    assert "\n" not in message
    assert len(message) < 600
    return message


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        (('class_names = ["setosa", "versicolor", "virginica"]', 'class_names = ["setosa", "setosa", "virginica"]'),
         "`class_names` lists 'setosa' twice"),
        (('class_names = ["setosa", "versicolor", "virginica"]', 'class_names = ["setosa", "prediction", "virginica"]'),
         "a class may not be named 'prediction'"),
        (('name = "sepal_length"', 'name = "features"'), "a feature may not be named 'features'"),
        (('name = "sepal_width"', 'name = "instances"'), "a feature may not be named 'instances'"),
        (('name = "iris-random-forest"', 'name = ".."'), '`name` must start with a letter or digit and hold no ".."'),
        (('name = "iris-random-forest"', 'name = "a..b"'), '`name` must start with a letter or digit and hold no ".."'),
        (("example = [6.1, 2.8, 4.7, 1.2]", 'example = [6.1, "wide", 4.7, 1.2]'),
         "`example` is not a request the API accepts"),
        (("example = [6.1, 2.8, 4.7, 1.2]", "example = [6.1, 2.8, 4.7, 1e300]"),
         "`example` is not a request the API accepts"),
    ],
)  # fmt: skip
def test_a_spec_that_would_build_and_then_misbehave_is_refused_in_one_line(
    tmp_path: Path, replacement: tuple[str, str], expected: str
) -> None:
    assert expected in refusal(iris_spec(tmp_path, replacement))


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        ((FOREST, 'estimator = "sklearn.ensemble.RandomForestRegressor"'),
         "`task` is 'classification', but the estimator is a RandomForestRegressor"),
        ((FOREST, 'estimator = "collections.OrderedDict"'),
         "gave a OrderedDict, not an estimator with fit and predict"),
    ],
)  # fmt: skip
def test_task_and_estimator_are_checked_before_training(
    tmp_path: Path, replacement: tuple[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = iris_spec(tmp_path, replacement)
    monkeypatch.setattr("build.train.split_rows", lambda spec: pytest.fail("trained before checking"))

    assert expected in refusal(path, train=True)


def test_bad_params_are_refused_before_training_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = DEFAULT_SPEC.read_text()
    params_line = next(line for line in text.splitlines() if line.startswith("params"))
    path = iris_spec(tmp_path, (params_line, 'params = { n_estimators = "many" }'))
    monkeypatch.setattr("build.train.split_rows", lambda spec: pytest.fail("trained before checking"))

    assert "`training.params` do not fit sklearn.ensemble.RandomForestClassifier: The 'n_estimators' parameter" in (
        refusal(path, train=True)
    )


def test_sample_targets_are_read_as_the_estimators_integer_classes(tmp_path: Path) -> None:
    iris = load_iris()
    estimator = RandomForestClassifier(n_estimators=3, random_state=0).fit(iris.data, iris.target)
    joblib.dump(estimator, tmp_path / "model.joblib")
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    with (tmp_path / "rows.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([*names, "target"])
        writer.writerows(
            [*(repr(float(value)) for value in row), int(label)]
            for row, label in zip(iris.data[::10], iris.target[::10], strict=True)
        )
    lines = ['name = "own"', 'task = "classification"', 'estimator_file = "model.joblib"', 'sample_data = "rows.csv"']
    (tmp_path / "spec.toml").write_text("\n".join(lines + [f'[[features]]\nname = "{n}"' for n in names]) + "\n")

    result = train_if_needed(tmp_path / "out", load_spec(tmp_path / "spec.toml"))

    assert result.manifest["metrics"]["test_accuracy"] == float(
        np.mean(estimator.predict(iris.data[::10]) == iris.target[::10])
    )


@pytest.mark.parametrize(
    "estimator", ["sklearn.svm.SVC", "sklearn.svm.LinearSVC", "sklearn.linear_model.RidgeClassifier"]
)
def test_a_classifier_without_predict_proba_builds_serves_and_refuses_probabilities(
    tmp_path: Path, estimator: str
) -> None:
    text = DEFAULT_SPEC.read_text()
    params_line = next(line for line in text.splitlines() if line.startswith("params"))
    path = iris_spec(
        tmp_path,
        (FOREST, f'estimator = "{estimator}"'),
        (params_line, "params = {}"),
    )
    spec = load_spec(path)
    baked = bake_model(tmp_path / "package", "auto", tmp_path / "cache", spec)
    fitted: Any = joblib.load(tmp_path / "cache" / "model.joblib")
    rows = [[6.1, 2.8, 4.7, 1.2], [5.0, 3.4, 1.5, 0.2]]

    with imported_app(tmp_path / "package" / PACKAGE_MODEL_DIR) as app:
        answer = response_json(app.handler(http_api_event(body={"instances": rows}), LambdaContext()))
        refused = app.handler(
            http_api_event(body={"instances": rows}, query={"probabilities": "true"}), LambdaContext()
        )

    assert baked.probabilities is False
    assert answer["predictions"] == fitted.predict(np.array(rows)).tolist()
    assert refused["statusCode"] == 422
    short = estimator.rpartition(".")[2]
    assert response_json(refused)["error"] == (
        f"model iris-random-forest ({short}) has no predict_proba: it predicts classes, not class probabilities; "
        "omit ?probabilities=true"
    )


def test_a_spec_category_the_fitted_encoder_never_saw_is_refused(tmp_path: Path) -> None:
    for name in ("penguins.toml", "penguins.py", "data/penguins.csv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(DEFAULT_SPEC.parent / name, tmp_path / name)
    spec_path = tmp_path / "penguins.toml"
    islands = '["Biscoe", "Dream", "Torgersen"]'
    spec_path.write_text(spec_path.read_text().replace(islands, '["Atlantis", "Biscoe", "Dream", "Torgersen"]'))

    assert refusal(spec_path, train=True).startswith(
        "`features` 'island': the fitted encoder never saw the category 'Atlantis' the spec lists; "
        "it knows ['Biscoe', 'Dream', 'Torgersen']"
    )


def test_the_encoders_categories_are_found_by_column_name_in_a_dataframe_fitted_pipeline() -> None:
    frame = pd.DataFrame({"size": [1.0, 2.0, 3.0], "colour": ["red", "blue", "red"], "shape": ["o", "x", "o"]})
    model = make_pipeline(
        ColumnTransformer([("codes", OneHotEncoder(), ["shape", "colour"]), ("numbers", "passthrough", ["size"])]),
        LogisticRegression(),
    ).fit(frame, [0, 1, 0])

    assert encoded_categories(model, [0, 1, 2]) == {2: ["o", "x"], 1: ["blue", "red"]}


def test_an_estimator_pickled_by_another_scikit_learn_says_to_pickle_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn

    iris = load_iris()
    estimator = RandomForestClassifier(n_estimators=2, random_state=0).fit(iris.data, iris.target)
    monkeypatch.setattr(sklearn.base, "__version__", "1.0.2")
    joblib.dump(estimator, tmp_path / "model.joblib")
    monkeypatch.undo()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    (tmp_path / "rows.csv").write_text(",".join(names) + "\n5.1,3.5,1.4,0.2\n")
    lines = ['name = "own"', 'task = "classification"', 'estimator_file = "model.joblib"', 'sample_data = "rows.csv"']
    (tmp_path / "spec.toml").write_text("\n".join(lines + [f'[[features]]\nname = "{n}"' for n in names]) + "\n")

    assert refusal(tmp_path / "spec.toml", train=True) == (
        f"`estimator_file`: model.joblib was pickled with scikit-learn 1.0.2, and the function runs "
        f"{sklearn.__version__} (functions/predict/requirements.txt): pickle the estimator again with scikit-learn "
        f"{sklearn.__version__}, e.g. with this project's .venv/bin/python (docs/own-model.md)"
    )
