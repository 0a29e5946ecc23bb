"""Model specs: the shipped ones build, and every kind of bad spec fails with one clear line."""

from __future__ import annotations

import csv
import hashlib
import tomllib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split

from build import DEFAULT_SPEC
from build.dataset import training_table
from build.spec import SpecError, load_spec
from build.train import MANIFEST_FILE, MODEL_FILE, check_rows, train_if_needed

MODELS_DIR = DEFAULT_SPEC.parent
SHIPPED_SPECS = sorted(MODELS_DIR.glob("*.toml"))
PENGUINS_HEADER = "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year"


def write_spec(directory: Path, text: str) -> Path:
    path = directory / "spec.toml"
    path.write_text(text)
    return path


def iris_spec_text(**replacements: str) -> str:
    text = DEFAULT_SPEC.read_text()
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return text


def spec_error(path: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return one_line(caught.value)


def one_line(error: Exception) -> str:
    message = str(error)
    assert "\n" not in message
    assert len(message) < 400
    return message


def test_every_shipped_spec_loads_and_documents_its_features() -> None:
    assert {path.stem for path in SHIPPED_SPECS} >= {"iris", "penguins", "diabetes"}
    for path in SHIPPED_SPECS:
        spec = load_spec(path)
        assert spec.feature_names
        assert spec.directory == MODELS_DIR


def test_default_spec_reproduces_the_seed_model_byte_for_byte(training_dir: Path) -> None:
    iris = load_iris()
    x_train, _, y_train, _ = train_test_split(
        iris.data, iris.target, test_size=0.2, random_state=42, stratify=iris.target
    )
    expected = training_dir / "expected.joblib"
    joblib.dump(RandomForestClassifier(n_estimators=100, random_state=42, n_jobs=1).fit(x_train, y_train), expected)

    assert (training_dir / MODEL_FILE).read_bytes() == expected.read_bytes()
    expected.unlink()


def test_a_csv_recipe_with_categories_and_missing_values_trains(tmp_path: Path) -> None:
    spec = load_spec(MODELS_DIR / "penguins.toml")

    result = train_if_needed(tmp_path, spec)

    rows = check_rows(spec)
    table = training_table(spec)
    with (MODELS_DIR / "data" / "penguins.csv").open(newline="") as stream:
        records = list(csv.DictReader(stream))
    assert rows.held_out.dtype == object
    assert len(table.rows) == len(records)
    assert sum(value != value for value in table.rows[:, 5]) == sum(r["sex"] == "NA" for r in records) > 0
    assert sorted(set(table.rows[:, 0])) == ["Biscoe", "Dream", "Torgersen"]
    assert result.manifest["task"] == "classification"
    assert result.manifest["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert result.manifest["class_names"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert result.manifest["features"][0] == {
        "name": "island",
        "type": "category",
        "categories": ["Biscoe", "Dream", "Torgersen"],
        "allow_missing": False,
    }
    assert result.manifest["metrics"]["test_rows"] == len(rows.held_out)


def test_a_regression_recipe_records_regression_metrics(tmp_path: Path) -> None:
    text = (MODELS_DIR / "diabetes.toml").read_text().replace("max_iter = 150", "max_iter = 5")
    spec = load_spec(write_spec(tmp_path, text))

    manifest = train_if_needed(tmp_path / "model", spec).manifest

    assert manifest["task"] == "regression"
    assert manifest["classes"] == []
    assert set(manifest["metrics"]) >= {"test_r2", "test_mae", "test_rmse"}


def test_a_fitted_estimator_file_is_taken_with_its_digest(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    joblib.dump(LinearRegression().fit(x, y), tmp_path / "linear.joblib")
    digest = hashlib.sha256((tmp_path / "linear.joblib").read_bytes()).hexdigest()
    rows = zip(x[:20].tolist(), y[:20].tolist(), strict=True)
    sample = "\n".join(",".join(map(str, [*row, target])) for row, target in rows)
    (tmp_path / "rows.csv").write_text(",".join([*(f"f{i}" for i in range(10)), "target"]) + "\n" + sample + "\n")
    features = "".join(f'[[features]]\nname = "f{i}"\n' for i in range(10))
    text = (
        f'name = "lin"\ntask = "regression"\nestimator_file = "linear.joblib"\nsha256 = "{digest}"\n'
        f'sample_data = "rows.csv"\n{features}'
    )

    result = train_if_needed(tmp_path / "model", load_spec(write_spec(tmp_path, text)))

    assert (tmp_path / "model" / MODEL_FILE).read_bytes() == (tmp_path / "linear.joblib").read_bytes()
    assert result.manifest["sha256"] == digest
    assert (tmp_path / "model" / MANIFEST_FILE).is_file()


BAD_DOCUMENTS: list[tuple[dict[str, str], str]] = [
    ({'name = "iris-random-forest"': 'name = "iris forest!"'}, "`name`"),
    ({'task = "classification"': 'task = "clustering"'}, "`task`"),
    ({"n_estimators = 100,": 'n_estimators = 100, colour = "red",'}, "`training.params` do not fit"),
    ({'estimator = "sklearn.ensemble.RandomForestClassifier"': 'estimator = "sklearn.ensemble.Nope"'}, "neither"),
    ({'data = "sklearn:load_iris"': 'data = "sklearn:load_titanic"'}, "not a bundled dataset"),
    ({'data = "sklearn:load_iris"': 'data = "missing.csv"'}, "`training.data` 'missing.csv' is not a file"),
    ({"test_size = 0.2": "test_size = 1.5"}, "`training.test_size`"),
    ({'name = "sepal_length"\ntype = "number"': 'name = "sepal_length"\ntype = "text"'}, "`features.0.type`"),
    ({'name = "sepal_width"\ntype = "number"': 'name = "sepal_width"\ntype = "category"'}, "`categories`"),
    ({'name = "sepal_width"': 'name = "sepal_length"'}, "two features share a name"),
    ({'class_names = ["setosa", "versicolor", "virginica"]': 'class_names = ["a", "b"]'}, "`class_names` lists 2"),
    ({'task = "classification"': 'task = "regression"'}, "`class_names` is only for"),
    ({"[training]": 'estimator_file = "x.joblib"\n[training]'}, "either `estimator_file` or a `[training]`"),
    ({"[training]": 'colour = "red"\n[training]'}, "unknown key `colour`"),
    ({"[training]": "[training"}, "not valid TOML"),
]


@pytest.mark.parametrize(("replacements", "expected"), BAD_DOCUMENTS)
def test_bad_specs_fail_with_one_line_naming_the_key(
    tmp_path: Path, replacements: dict[str, str], expected: str
) -> None:
    path = write_spec(tmp_path, iris_spec_text(**replacements))

    with pytest.raises(SpecError) as caught:
        train_if_needed(tmp_path / "model", load_spec(path))
    assert expected in one_line(caught.value)


def test_a_feature_count_that_disagrees_with_the_data_is_refused(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        iris_spec_text(
            **{'[[features]]\nname = "petal_width"\ntype = "number"\n': "", "example = [6.1, 2.8, 4.7, 1.2]": ""}
        ),
    )

    with pytest.raises(SpecError) as caught:
        train_if_needed(tmp_path / "model", load_spec(path))
    assert "`features` lists 3 features, but sklearn:load_iris has 4 columns" in one_line(caught.value)


def penguins_with(tmp_path: Path, rows: list[str], spec_changes: dict[str, str] | None = None) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "penguins.csv").write_text("\n".join([PENGUINS_HEADER, *rows]) + "\n")
    (tmp_path / "penguins.py").write_text((MODELS_DIR / "penguins.py").read_text())
    text = (MODELS_DIR / "penguins.toml").read_text()
    for old, new in (spec_changes or {}).items():
        text = text.replace(old, new)
    return write_spec(tmp_path, text)


GOOD_ROW = "Adelie,Torgersen,39.1,18.7,181,3750,male,2007"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("Adelie,Atlantis,39.1,18.7,181,3750,male,2007", "line 3, column 'island': \"Atlantis\" is not one of"),
        ("Adelie,Dream,long,18.7,181,3750,male,2007", "line 3, column 'bill_length_mm': \"long\" is not a number"),
        ("Adelie,Dream,inf,18.7,181,3750,male,2007", '"inf" is not a finite number'),
        ("Adelie,NA,39.1,18.7,181,3750,male,2007", "line 3, column 'island' is missing; set allow_missing"),
        ("Adelie,Dream,39.1,18.7,181,3750,male", "line 3 has 7 cells; the header has 8"),
    ],
)
def test_bad_training_rows_are_named_by_line_and_column(tmp_path: Path, row: str, expected: str) -> None:
    spec = load_spec(penguins_with(tmp_path, [GOOD_ROW, row]))

    with pytest.raises(SpecError) as caught:
        train_if_needed(tmp_path / "model", spec)
    assert expected in one_line(caught.value)


def test_a_training_csv_without_a_feature_column_is_refused(tmp_path: Path) -> None:
    spec = load_spec(penguins_with(tmp_path, [GOOD_ROW], {'name = "sex"': 'name = "gender"'}))

    with pytest.raises(SpecError) as caught:
        train_if_needed(tmp_path / "model", spec)
    assert "has no column 'gender'" in one_line(caught.value)


def fitted_spec(tmp_path: Path, estimator: Any, features: list[str], **keys: str) -> Path:
    joblib.dump(estimator, tmp_path / "model.joblib")
    (tmp_path / "rows.csv").write_text(",".join(features) + "\n" + ",".join("1.0" for _ in features) + "\n")
    lines = [f'{key} = "{value}"' for key, value in {"name": "m", "task": "regression", **keys}.items()]
    lines += ['estimator_file = "model.joblib"', 'sample_data = "rows.csv"']
    lines += [f'[[features]]\nname = "{name}"' for name in features]
    return write_spec(tmp_path, "\n".join(lines) + "\n")


def test_a_fitted_estimator_with_another_digest_is_refused(tmp_path: Path) -> None:
    estimator = LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0])
    path = fitted_spec(tmp_path, estimator, ["a", "b", "c"], sha256="0" * 64)

    with pytest.raises(SpecError) as caught:
        train_if_needed(tmp_path / "out", load_spec(path))
    assert "`sha256`: model.joblib has sha256" in one_line(caught.value)


def test_a_fitted_estimator_with_another_feature_count_is_refused(tmp_path: Path) -> None:
    estimator = LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0])
    path = fitted_spec(tmp_path, estimator, ["a", "b"])

    with pytest.raises(SpecError) as caught:
        train_if_needed(tmp_path / "out", load_spec(path))
    assert "`features` lists 2 features; the estimator takes 3" in one_line(caught.value)


def test_a_fitted_estimator_for_another_task_is_refused(tmp_path: Path) -> None:
    estimator = RandomForestClassifier(n_estimators=2, random_state=0).fit(np.eye(3), [0, 1, 1])
    path = fitted_spec(tmp_path, estimator, ["a", "b", "c"])

    with pytest.raises(SpecError) as caught:
        train_if_needed(tmp_path / "out", load_spec(path))
    assert "`task` is 'regression', but the estimator is a RandomForestClassifier" in one_line(caught.value)


def test_a_missing_spec_and_a_missing_estimator_file_are_named(tmp_path: Path) -> None:
    assert "not found; MODEL= takes a path" in spec_error(tmp_path / "nope.toml")
    path = write_spec(
        tmp_path,
        'name = "m"\ntask = "regression"\nestimator_file = "gone.joblib"\nsample_data = "gone.csv"\n'
        '[[features]]\nname = "a"\n',
    )
    assert "`estimator_file` 'gone.joblib' is not a file" in spec_error(path)


def test_every_shipped_spec_is_valid_toml_with_documented_keys() -> None:
    documented = set(tomllib.loads(DEFAULT_SPEC.read_text())) | {"estimator_file", "sha256", "sample_data", "target"}
    for path in SHIPPED_SPECS:
        assert set(tomllib.loads(path.read_text())) <= documented, path
